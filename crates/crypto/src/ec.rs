//! P-256 keys: issuers' public keys (PEM or JWK in, JWK out) and the service's own key pairs.

use aws_lc_rs::agreement::{self, ECDH_P256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{b64url, b64url_decode, CryptoError};

/// DER prefix of a P-256 SubjectPublicKeyInfo; the uncompressed point follows it.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A public JWK of a P-256 key, as published and as accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

/// A validated P-256 public key (a point on the curve).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    point: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(P-256 {})", &self.x_b64()[..8])
    }
}

impl PublicKey {
    /// Builds a key from an uncompressed SEC1 point, checking that it lies on P-256.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if it is not a P-256 point.
    pub fn from_point(point: &[u8]) -> Result<Self, CryptoError> {
        if point.len() != 65 || point[0] != 4 {
            return Err(CryptoError::InvalidKey("not an uncompressed P-256 point"));
        }
        // An ECDH agreement with a throwaway key is the primitive's own curve check.
        let probe =
            agreement::PrivateKey::generate(&ECDH_P256).map_err(|_| CryptoError::Primitive)?;
        agreement::agree(
            &probe,
            agreement::UnparsedPublicKey::new(&ECDH_P256, point),
            (),
            |_| Ok(()),
        )
        .map_err(|()| CryptoError::InvalidKey("point is not on P-256"))?;
        Ok(Self {
            point: point.to_vec(),
        })
    }

    /// The public half aws-lc computed from a private key: on the curve by construction, so
    /// the probe agreement of [`PublicKey::from_point`] is not repeated for it.
    fn derived(point: &[u8]) -> Self {
        Self {
            point: point.to_vec(),
        }
    }

    /// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or a JSON JWK.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] for anything but a P-256 public key.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let jwk: Jwk =
                serde_json::from_str(trimmed).map_err(|_| CryptoError::InvalidKey("not a JWK"))?;
            return Self::from_jwk(&jwk);
        }
        let blocks =
            pem::parse_many(trimmed).map_err(|_| CryptoError::InvalidKey("not PEM or JWK"))?;
        let pem = blocks
            .iter()
            .find(|b| b.tag() == "PUBLIC KEY")
            .ok_or(CryptoError::InvalidKey("no PUBLIC KEY in the PEM"))?;
        let der = pem.contents();
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) => Self::from_point(point),
            None => Err(CryptoError::InvalidKey("not a P-256 public key")),
        }
    }

    /// Builds a key from a JWK's `x` and `y`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] unless `kty` is EC, `crv` is P-256 and the point is valid.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, CryptoError> {
        Self::from_point(&jwk_point(jwk)?)
    }
}

/// The uncompressed point a P-256 JWK names, not yet checked to lie on the curve.
///
/// # Errors
/// [`CryptoError::InvalidKey`] unless `kty` is EC, `crv` is P-256 and `x`, `y` are 32 bytes.
pub fn jwk_point(jwk: &Jwk) -> Result<Vec<u8>, CryptoError> {
    if jwk.kty != "EC" || jwk.crv != "P-256" {
        return Err(CryptoError::InvalidKey("JWK is not an EC P-256 key"));
    }
    let (Some(x), Some(y)) = (b64url_decode(&jwk.x), b64url_decode(&jwk.y)) else {
        return Err(CryptoError::InvalidKey("JWK coordinates are not base64url"));
    };
    if x.len() != 32 || y.len() != 32 {
        return Err(CryptoError::InvalidKey("JWK coordinates are not 32 bytes"));
    }
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

impl PublicKey {
    /// The uncompressed point.
    #[must_use]
    pub fn point(&self) -> &[u8] {
        &self.point
    }

    /// `x`, base64url.
    #[must_use]
    pub fn x_b64(&self) -> String {
        b64url(&self.point[1..33])
    }

    /// `y`, base64url.
    #[must_use]
    pub fn y_b64(&self) -> String {
        b64url(&self.point[33..])
    }

    /// The public JWK, with optional `kid`, `use` and `alg`.
    #[must_use]
    pub fn to_jwk(&self, kid: Option<&str>, use_: Option<&str>, alg: Option<&str>) -> Jwk {
        Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: self.x_b64(),
            y: self.y_b64(),
            kid: kid.map(str::to_owned),
            use_: use_.map(str::to_owned),
            alg: alg.map(str::to_owned),
        }
    }
}

/// An ES256 key pair: the service's token-signing key, or an issuer's assertion key in the
/// `token` command.
pub struct SigningKey {
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?})", self.public)
    }
}

impl SigningKey {
    /// Generates a new ES256 key pair.
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if generation fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| CryptoError::Primitive)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Loads a key pair from PKCS#8 DER.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if it is not a P-256 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| CryptoError::InvalidKey("not a P-256 PKCS#8 private key"))?;
        let public = PublicKey::derived(pair.public_key().as_ref());
        Ok(Self {
            pkcs8: Zeroizing::new(der.to_vec()),
            public,
        })
    }

    /// Loads a private key from PEM: SEC1 (`EC PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] for anything else.
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
        let blocks =
            pem::parse_many(text.trim()).map_err(|_| CryptoError::InvalidKey("not PEM"))?;
        let pem = blocks
            .iter()
            .find(|b| b.tag() == "PRIVATE KEY" || b.tag() == "EC PRIVATE KEY")
            .ok_or(CryptoError::InvalidKey("no private key in the PEM"))?;
        let der = Zeroizing::new(pem.contents().to_vec());
        match pem.tag() {
            "PRIVATE KEY" => Self::from_pkcs8(&der),
            "EC PRIVATE KEY" => {
                let pair =
                    EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                        .map_err(|_| CryptoError::InvalidKey("not a P-256 SEC1 private key"))?;
                let pkcs8 = pair.to_pkcs8v1().map_err(|_| CryptoError::Primitive)?;
                Self::from_pkcs8(pkcs8.as_ref())
            }
            _ => Err(CryptoError::InvalidKey("PEM is not a private key")),
        }
    }

    /// The PKCS#8 DER, for wrapping under the KEK.
    #[must_use]
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The PKCS#8 private key as PEM.
    #[must_use]
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            self.pkcs8.to_vec(),
        )))
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The public key as PEM SubjectPublicKeyInfo.
    #[must_use]
    pub fn public_pem(&self) -> String {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.public.point());
        pem::encode(&pem::Pem::new("PUBLIC KEY", der))
    }
}

/// A P-256 key-agreement key pair: the service's JWE key that issuers encrypt card data to.
pub struct AgreementKey {
    der: Zeroizing<Vec<u8>>,
    key: agreement::PrivateKey,
    public: PublicKey,
}

impl std::fmt::Debug for AgreementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgreementKey({:?})", self.public)
    }
}

impl AgreementKey {
    /// Generates a new P-256 key-agreement key.
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if generation fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let key =
            agreement::PrivateKey::generate(&ECDH_P256).map_err(|_| CryptoError::Primitive)?;
        let der: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'static> =
            key.as_der().map_err(|_| CryptoError::Primitive)?;
        Self::from_der(der.as_ref())
    }

    /// Loads the key from its RFC 5915 DER form.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if it is not a P-256 private key.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = agreement::PrivateKey::from_private_key_der(&ECDH_P256, der)
            .map_err(|_| CryptoError::InvalidKey("not a P-256 private key"))?;
        let public_bytes = key
            .compute_public_key()
            .map_err(|_| CryptoError::Primitive)?;
        let public = PublicKey::derived(public_bytes.as_ref());
        Ok(Self {
            der: Zeroizing::new(der.to_vec()),
            key,
            public,
        })
    }

    /// The DER private key, for wrapping under the KEK.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The primitive key, for the JWE decrypt path.
    #[must_use]
    pub fn private(&self) -> &agreement::PrivateKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_round_trips_through_pem_and_jwk() {
        let key = SigningKey::generate().unwrap();
        let from_pem = PublicKey::parse(&key.public_pem()).unwrap();
        assert_eq!(&from_pem, key.public_key());
        let jwk = serde_json::to_string(&key.public_key().to_jwk(Some("k1"), None, None)).unwrap();
        assert_eq!(&PublicKey::parse(&jwk).unwrap(), key.public_key());
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let key = SigningKey::generate().unwrap();
        let mut point = key.public_key().point().to_vec();
        point[64] ^= 1;
        assert!(PublicKey::from_point(&point).is_err());
    }

    #[test]
    fn private_keys_load_from_sec1_and_pkcs8_pem() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.pkcs8()).unwrap();
        let sec1 = pair.private_key().as_der().unwrap();
        let sec1_pem = pem::encode(&pem::Pem::new("EC PRIVATE KEY", sec1.as_ref().to_vec()));
        assert_eq!(
            SigningKey::from_pem(&sec1_pem).unwrap().public_key(),
            key.public_key()
        );
    }

    #[test]
    fn a_pem_with_an_ec_parameters_block_first_still_loads() {
        let key = SigningKey::generate().unwrap();
        let params = pem::encode(&pem::Pem::new(
            "EC PARAMETERS",
            vec![6, 8, 42, 134, 72, 206, 61, 3, 1, 7],
        ));
        let both = format!("{params}{}", key.to_pkcs8_pem().as_str());
        assert_eq!(
            SigningKey::from_pem(&both).unwrap().public_key(),
            key.public_key()
        );
    }

    #[test]
    fn an_agreement_key_round_trips_through_der() {
        let key = AgreementKey::generate().unwrap();
        assert_eq!(
            AgreementKey::from_der(key.der()).unwrap().public_key(),
            key.public_key()
        );
    }
}
