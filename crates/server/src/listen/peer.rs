//! Who is on the other end of a connection: its address and, over mTLS (or from a trusted
//! proxy's header), the identity its client certificate carries. Each request gets a
//! [`Peer`] extension (and axum's `ConnectInfo<SocketAddr>`), which the issuer bindings of
//! contract section 4 are checked against.

use std::net::SocketAddr;
use std::sync::Arc;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The connection a request came over.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The TCP peer (a proxy's address when behind one).
    pub addr: SocketAddr,
    /// The client certificate's identity: from the TLS handshake, or from
    /// `server.client_cert_header` when the peer is a trusted proxy.
    pub cert: Option<Arc<ClientCert>>,
    /// Whether this listener terminated TLS on the connection (the portal's `Secure` cookie).
    pub tls: bool,
}

/// What a client certificate says about its holder: the subject's attributes and the
/// subject alternative names (DNS names and URIs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// `(type, value)` in the certificate's order, types as RFC 4514 names them (`CN`, `O`,
    /// …) or as a dotted OID.
    pub subject: Vec<(String, String)>,
    pub sans: Vec<String>,
}

impl ClientCert {
    /// Reads the identity from a DER certificate.
    ///
    /// # Errors
    /// If the certificate cannot be parsed.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let mut subject = Vec::new();
        for attr in cert.subject().iter_attributes() {
            let name = attribute_name(&attr.attr_type().to_id_string());
            let value = attr.as_str().map_err(|e| e.to_string())?;
            subject.push((name, value.to_owned()));
        }
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::URI(s) => sans.push((*s).to_owned()),
                    _ => {}
                }
            }
        }
        Ok(Self { subject, sans })
    }

    /// Reads the first certificate of a PEM text (a proxy's header, URL-decoded).
    ///
    /// # Errors
    /// If there is no certificate or it cannot be parsed.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| e.to_string())?;
        Self::from_der(&der)
    }

    /// Whether this certificate matches any of an issuer's bindings.
    #[must_use]
    pub fn matches(&self, subjects: &[String], sans: &[String]) -> bool {
        subjects
            .iter()
            .any(|dn| parse_dn(dn).is_ok_and(|want| same_attributes(&want, &self.subject)))
            || sans.iter().any(|san| self.sans.iter().any(|s| s == san))
    }
}

/// Whether a request over `cert` may act for an issuer with these bindings: an issuer with
/// none is accepted over any connection.
#[must_use]
pub fn admits(cert: Option<&ClientCert>, subjects: &[String], sans: &[String]) -> bool {
    if subjects.is_empty() && sans.is_empty() {
        return true;
    }
    cert.is_some_and(|c| c.matches(subjects, sans))
}

/// The same attributes with the same values, whatever their order (RFC 4514 writes them
/// last RDN first; operators write them either way).
fn same_attributes(want: &[(String, String)], have: &[(String, String)]) -> bool {
    if want.len() != have.len() {
        return false;
    }
    let mut left: Vec<&(String, String)> = have.iter().collect();
    for (name, value) in want {
        match left
            .iter()
            .position(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
        {
            Some(i) => {
                left.swap_remove(i);
            }
            None => return false,
        }
    }
    true
}

const NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.5", "SERIALNUMBER"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "EMAILADDRESS"),
];

fn attribute_name(oid: &str) -> String {
    NAMES
        .iter()
        .find(|(o, _)| *o == oid)
        .map_or_else(|| oid.to_owned(), |(_, n)| (*n).to_owned())
}

/// Parses an RFC 4514 distinguished name (`CN=bank-a-client,O=Bank A`) into its attributes;
/// `+` (multi-valued RDNs) is read like `,`, escapes (`\,`, `\2C`) are undone.
///
/// # Errors
/// A text that is not a DN, said without echoing it.
pub fn parse_dn(dn: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut attributes = Vec::new();
    let mut chars = dn.chars().peekable();
    loop {
        let mut name = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            name.push(c);
        }
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            return Err("a DN is TYPE=value pairs separated by commas, like CN=client,O=Bank");
        }
        let mut value = String::new();
        let mut bytes = Vec::new();
        let mut ended = true;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(h) if h.is_ascii_hexdigit() => {
                        let l = chars
                            .next()
                            .filter(char::is_ascii_hexdigit)
                            .ok_or("bad escape")?;
                        let hex = format!("{h}{l}");
                        bytes.push(u8::from_str_radix(&hex, 16).map_err(|_| "bad escape")?);
                        continue;
                    }
                    Some(e) => flush(&mut bytes, &mut value)?.push(e),
                    None => return Err("a DN ends in a lone backslash"),
                },
                ',' | '+' => {
                    ended = false;
                    break;
                }
                c => flush(&mut bytes, &mut value)?.push(c),
            }
        }
        flush(&mut bytes, &mut value)?;
        if value.is_empty() {
            return Err("a DN attribute has no value");
        }
        let canonical = NAMES
            .iter()
            .find(|(oid, n)| n.eq_ignore_ascii_case(name) || *oid == name)
            .map_or_else(|| name.to_owned(), |(_, n)| (*n).to_owned());
        attributes.push((canonical, value));
        if ended {
            return Ok(attributes);
        }
    }
}

fn flush<'a>(bytes: &mut Vec<u8>, value: &'a mut String) -> Result<&'a mut String, &'static str> {
    if !bytes.is_empty() {
        value.push_str(std::str::from_utf8(bytes).map_err(|_| "a DN escape is not UTF-8")?);
        bytes.clear();
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(subject: &[(&str, &str)], sans: &[&str]) -> ClientCert {
        ClientCert {
            subject: subject
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            sans: sans.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_dn_matches_attribute_by_attribute_in_any_order() {
        let c = cert(
            &[("C", "FR"), ("O", "Bank A"), ("CN", "bank-a-client")],
            &[],
        );
        let dn = |s: &str| vec![s.to_owned()];
        assert!(c.matches(&dn("CN=bank-a-client,O=Bank A,C=FR"), &[]));
        assert!(c.matches(&dn("c=FR, o=Bank A, cn=bank-a-client"), &[]));
        assert!(!c.matches(&dn("CN=bank-a-client,O=Bank A"), &[]));
        assert!(!c.matches(&dn("CN=bank-b-client,O=Bank A,C=FR"), &[]));
        assert!(!c.matches(&dn("CN=bank-a-client,O=bank a,C=FR"), &[]));
    }

    #[test]
    fn escapes_are_undone() {
        assert_eq!(
            parse_dn(r"CN=a\,b,O=x\2By").unwrap(),
            vec![("CN".into(), "a,b".into()), ("O".into(), "x+y".into())]
        );
        assert!(parse_dn("no equals sign").is_err());
        assert!(parse_dn("CN=").is_err());
    }

    #[test]
    fn an_unbound_issuer_is_admitted_over_anything_a_bound_one_only_over_its_cert() {
        let c = cert(&[("CN", "a")], &["a.bank.example"]);
        assert!(admits(None, &[], &[]));
        assert!(!admits(None, &["CN=a".into()], &[]));
        assert!(admits(Some(&c), &[], &["a.bank.example".into()]));
        assert!(!admits(Some(&c), &[], &["b.bank.example".into()]));
    }
}
