//! `issuer add|set --client-cert-subject DN --client-cert-san NAME`: the client certificates
//! an issuer is bound to (contract section 4).

use clap::Args;
use d1_store::CertBindings;

use super::refuse::refuse;

/// The binding flags, each repeatable.
#[derive(Debug, Args)]
pub(crate) struct CertArgs {
    /// Accept the issuer only over a client certificate with this subject, RFC 4514 form
    /// ("CN=bank-a-client,O=Bank A"), compared attribute by attribute. Repeatable.
    #[arg(long = "client-cert-subject", value_name = "DN")]
    pub(crate) subjects: Vec<String>,
    /// Accept the issuer only over a client certificate with this subject alternative name
    /// (a DNS name or URI, as written). Repeatable.
    #[arg(long = "client-cert-san", value_name = "DNS_OR_URI")]
    pub(crate) sans: Vec<String>,
}

impl CertArgs {
    /// Whether any binding flag was given.
    pub(crate) fn given(&self) -> bool {
        !self.subjects.is_empty() || !self.sans.is_empty()
    }

    /// The bindings, each checked.
    pub(crate) fn bindings(self) -> anyhow::Result<CertBindings> {
        let mut bindings = CertBindings::default();
        for dn in self.subjects {
            let dn = dn.trim().to_owned();
            crate::listen::peer::parse_dn(&dn)
                .map_err(|why| refuse(format!("--client-cert-subject: {why}")))?;
            bindings.subjects.push(dn);
        }
        for san in self.sans {
            if san.is_empty() || san.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(refuse(
                    "--client-cert-san must be a DNS name or URI without spaces",
                ));
            }
            bindings.sans.push(san);
        }
        Ok(bindings)
    }
}

/// How `issuer list` shows the bindings: `client_certs=-` when there are none.
pub(crate) fn show(bindings: &CertBindings) -> String {
    if bindings.is_empty() {
        return "client_certs=-".to_owned();
    }
    let mut parts: Vec<String> = bindings
        .subjects
        .iter()
        .map(|dn| format!("subject:\"{dn}\""))
        .collect();
    parts.extend(bindings.sans.iter().map(|san| format!("san:{san}")));
    format!("client_certs={}", parts.join(";"))
}
