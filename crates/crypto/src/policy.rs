//! What each seal at rest is bound to, and the PAN MAC: the registry's crypto policy in one
//! place to review. A context names the purpose, a version and the owner, so that a
//! ciphertext copied onto another consumer, card or issuer does not open.

use aws_lc_rs::hmac;

/// The context the PAN MAC key is wrapped for under the KEK.
pub const PAN_MAC_CONTEXT: &[u8] = b"d1/pan-mac/v1";

/// What a consumer's data is sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerSeal {
    /// The consumer's data key, wrapped by the KEK.
    DataKey,
    /// The consumer's PI, under its data key.
    Pi,
    /// An enrolment's billing address, under the consumer's data key.
    Billing,
}

impl ConsumerSeal {
    fn purpose(self) -> &'static str {
        match self {
            Self::DataKey => "dek",
            Self::Pi => "pi",
            Self::Billing => "billing",
        }
    }
}

/// The context of a consumer's seal: bound to the issuer and the consumerId.
#[must_use]
pub fn consumer_context(seal: ConsumerSeal, issuer: &str, consumer: &str) -> Vec<u8> {
    format!("d1/{}/v1|{issuer}|{consumer}", seal.purpose()).into_bytes()
}

/// The context of a card's sealed data (PAN, expiry, holder): bound to the issuer and cardId.
#[must_use]
pub fn card_context(issuer: &str, card: &str) -> Vec<u8> {
    format!("d1/card/v1|{issuer}|{card}").into_bytes()
}

/// The context of an issuer backend's client secret under the KEK: bound to the issuer.
#[must_use]
pub fn backend_secret_context(issuer: &str) -> Vec<u8> {
    format!("d1/backend-secret/v1|{issuer}").into_bytes()
}

/// The context of a service key's private half under the KEK: bound to its kid.
#[must_use]
pub fn service_key_context(kid: &str) -> Vec<u8> {
    format!("d1/service-key/v1|{kid}").into_bytes()
}

/// The context of a profile (`card: None`) or a card in the simulated Click to Pay
/// directory: bound to the issuer, the consumerId and the card.
#[must_use]
pub fn directory_context(issuer: &str, consumer: &str, card: Option<&str>) -> String {
    format!(
        "d1/directory/v1|{issuer}|{consumer}|{}",
        card.unwrap_or("profile")
    )
}

/// A keyed MAC of PANs within an issuer: PANs are compared without being held in clear.
pub struct PanMac(hmac::Key);

impl std::fmt::Debug for PanMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PanMac(<key>)")
    }
}

impl PanMac {
    /// The MAC under a 32-byte key (unwrapped from the KEK).
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// The MAC of a PAN's digits registered with `issuer`.
    #[must_use]
    pub fn of(&self, issuer: &str, pan_digits: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(issuer.as_bytes());
        ctx.update(b"|");
        ctx.update(pan_digits.as_bytes());
        ctx.sign().as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_what_sealed_data_was_bound_to() {
        assert_eq!(
            consumer_context(ConsumerSeal::Pi, "BANK000001", "c1"),
            b"d1/pi/v1|BANK000001|c1"
        );
        assert_eq!(
            consumer_context(ConsumerSeal::DataKey, "B", "c"),
            b"d1/dek/v1|B|c"
        );
        assert_eq!(
            consumer_context(ConsumerSeal::Billing, "B", "c"),
            b"d1/billing/v1|B|c"
        );
        assert_eq!(card_context("B", "k1"), b"d1/card/v1|B|k1");
        assert_eq!(backend_secret_context("B"), b"d1/backend-secret/v1|B");
    }

    #[test]
    fn a_pan_mac_depends_on_the_issuer() {
        let mac = PanMac::new(&[7; 32]);
        let pan = "4111111111111111";
        assert_eq!(mac.of("A", pan), mac.of("A", pan));
        assert_ne!(mac.of("A", pan), mac.of("B", pan));
        assert_ne!(mac.of("A", pan), PanMac::new(&[8; 32]).of("A", pan));
    }
}
