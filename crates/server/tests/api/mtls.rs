//! mTLS and issuers bound to client certificates (contract section 4), against the real
//! binary: a CA, a server certificate and two issuer client certificates made in the test,
//! calls over TLS with and without a certificate, and the trusted-proxy header.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use d1_crypto::ec::SigningKey;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use reqwest::blocking::Client;
use serde_json::Value;

use crate::harness::{fresh_place_blocking, Place, TestIssuer};
use crate::process::{bin, command, free_port, serve_with, terminate};

/// A made-up PKI: the CA, the server's certificate for 127.0.0.1, and issuer clients.
struct Pki {
    ca_pem: String,
    a: String,
    b: String,
    stranger: String,
}

/// A client certificate and its key, PEM, signed by `ca`.
fn client(ca: &rcgen::Certificate, ca_key: &KeyPair, cn: &str, org: &str, san: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, org);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::DnsName(san.try_into().unwrap())];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, ca, ca_key).unwrap();
    format!("{}{}", cert.pem(), key.serialize_pem())
}

/// Makes the PKI and writes the server's files into `dir`.
fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "registry");
    params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), server_key.serialize_pem()).unwrap();
    // Another CA's client, for the handshake that must fail.
    let other_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Other CA");
    let other = params.self_signed(&other_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        a: client(&ca, &ca_key, "bank-a-client", "Bank A", "a.bank.example"),
        b: client(&ca, &ca_key, "bank-b-client", "Bank B", "b.bank.example"),
        stranger: client(
            &other,
            &other_key,
            "bank-a-client",
            "Bank A",
            "a.bank.example",
        ),
    }
}

fn tls_client(pki: &Pki, identity: Option<&str>) -> Client {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10));
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn issuer(id: &'static str) -> TestIssuer {
    TestIssuer {
        id,
        key: SigningKey::generate().unwrap(),
        kid: format!("kid-{id}"),
    }
}

/// Onboards `issuer` through the CLI with the binding flags `binding`.
fn onboard(place: &Place, issuer: &TestIssuer, binding: &[&str]) {
    let public = place.dir.path().join(format!("{}.pem", issuer.id));
    std::fs::write(&public, issuer.key.public_pem()).unwrap();
    let mut args = vec![
        "issuer",
        "add",
        "--issuer-id",
        issuer.id,
        "--assertion-key",
        public.to_str().unwrap(),
        "--kid",
        &issuer.kid,
    ];
    args.extend_from_slice(binding);
    let out = bin(place, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `serve` over TLS with `--client-ca`; ready once a call with `probe`'s certificate works.
fn serve_tls(place: &Place, probe: &Client) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let file = |name: &str| place.dir.path().join(name).to_str().unwrap().to_owned();
    let (cert, key, ca) = (file("server.pem"), file("server-key.pem"), file("ca.pem"));
    let args = [
        "serve",
        "--listen",
        &addr,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--client-ca",
        &ca,
    ];
    let mut server = command(place)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("https://{addr}");
    for _ in 0..100 {
        if probe
            .get(format!("{url}/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
        {
            return (server, url);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    panic!("the TLS server did not become ready");
}

/// A token request; the status and the body.
fn token(client: &Client, url: &str, issuer: &TestIssuer) -> (u16, Value) {
    token_with(client, url, issuer, None)
}

fn token_with(
    client: &Client,
    url: &str,
    issuer: &TestIssuer,
    header: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = client.post(format!("{url}/authz/v1/oauth2/token")).form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", &issuer.assertion()),
    ]);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

/// An API call as `issuer` with `token`: 404 when let in (the consumer does not exist), 401
/// when refused.
fn api_status(client: &Client, url: &str, issuer: &TestIssuer, token: &str) -> u16 {
    client
        .get(format!(
            "{url}/banking/v2/issuers/{}/consumers/nobody",
            issuer.id
        ))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn mtls_binds_issuers_to_their_client_certificates() {
    let place = fresh_place_blocking();
    let pki = pki(place.dir.path());
    let (a, b, c) = (
        issuer("BANKAAAAA1"),
        issuer("BANKBBBBB1"),
        issuer("BANKCCCCC1"),
    );
    onboard(
        &place,
        &a,
        &["--client-cert-subject", "CN=bank-a-client,O=Bank A"],
    );
    onboard(&place, &b, &["--client-cert-san", "b.bank.example"]);
    onboard(&place, &c, &[]);
    let listed = String::from_utf8(bin(&place, &["issuer", "list"]).stdout).unwrap();
    assert!(
        listed.contains(r#"client_certs=subject:"CN=bank-a-client,O=Bank A""#),
        "{listed}"
    );
    assert!(
        listed.contains("client_certs=san:b.bank.example"),
        "{listed}"
    );
    assert!(listed.contains("BANKCCCCC1") && listed.contains("client_certs=-"));

    let (over_a, over_b) = (
        tls_client(&pki, Some(&pki.a)),
        tls_client(&pki, Some(&pki.b)),
    );
    let (server, url) = serve_tls(&place, &over_a);
    for (what, client) in [
        ("no certificate", tls_client(&pki, None)),
        (
            "another CA's certificate",
            tls_client(&pki, Some(&pki.stranger)),
        ),
    ] {
        assert!(
            client.get(format!("{url}/readyz")).send().is_err(),
            "a connection with {what} fails the handshake"
        );
    }

    let (status, body) = token(&over_a, &url, &a);
    assert_eq!(status, 200, "{body}");
    let token_a = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api_status(&over_a, &url, &a, &token_a), 404);
    assert_eq!(
        api_status(&over_b, &url, &a, &token_a),
        401,
        "a token of issuer A over issuer B's certificate"
    );
    let (status, body) = token(&over_b, &url, &a);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(body["error_description"].is_string());

    let (status, body) = token(&over_b, &url, &b);
    assert_eq!(status, 200, "B is bound by its SAN: {body}");
    let token_b = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api_status(&over_b, &url, &b, &token_b), 404);
    assert_eq!(api_status(&over_a, &url, &b, &token_b), 401);

    for client in [&over_a, &over_b] {
        let (status, body) = token(client, &url, &c);
        assert_eq!(
            status, 200,
            "an unbound issuer over any valid certificate: {body}"
        );
        let token_c = body["access_token"].as_str().unwrap();
        assert_eq!(api_status(client, &url, &c, token_c), 404);
    }
    assert_eq!(terminate(server), Some(0));
}

#[test]
fn the_proxy_header_is_trusted_only_from_trusted_proxies() {
    let place = fresh_place_blocking();
    let pki = pki(place.dir.path());
    let a = issuer("BANKAAAAA1");
    onboard(
        &place,
        &a,
        &["--client-cert-subject", "O=Bank A,CN=bank-a-client"],
    );
    let cert_of = |pem: &str| {
        let cert = pem.split("-----END CERTIFICATE-----").next().unwrap();
        let cert = format!("{cert}-----END CERTIFICATE-----\n");
        percent_encoding::utf8_percent_encode(&cert, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let (cert_a, cert_b) = (cert_of(&pki.a), cert_of(&pki.b));
    let header = ("D1__SERVER__CLIENT_CERT_HEADER", "x-client-cert");
    let plain = Client::new();

    let (server, url) = serve_with(
        &place,
        &[header, ("D1__SERVER__TRUSTED_PROXIES", "[\"127.0.0.0/8\"]")],
    );
    let (status, body) = token_with(&plain, &url, &a, Some(("x-client-cert", &cert_a)));
    assert_eq!(
        status, 200,
        "from a trusted proxy, the header's certificate: {body}"
    );
    let token_a = body["access_token"].as_str().unwrap().to_owned();
    let call = |cert: Option<&str>| {
        let mut request = plain
            .get(format!(
                "{url}/banking/v2/issuers/{}/consumers/nobody",
                a.id
            ))
            .bearer_auth(&token_a);
        if let Some(cert) = cert {
            request = request.header("x-client-cert", cert);
        }
        request.send().unwrap().status().as_u16()
    };
    assert_eq!(call(Some(&cert_a)), 404);
    assert_eq!(call(Some(&cert_b)), 401);
    assert_eq!(
        call(None),
        401,
        "no header, no certificate: not the proxy's own"
    );
    let (status, _) = token_with(&plain, &url, &a, Some(("x-client-cert", &cert_b)));
    assert_eq!(status, 400);
    assert_eq!(terminate(server), Some(0));

    let (server, url) = serve_with(
        &place,
        &[header, ("D1__SERVER__TRUSTED_PROXIES", "[\"192.0.2.1\"]")],
    );
    let (status, body) = token_with(&plain, &url, &a, Some(("x-client-cert", &cert_a)));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "from an untrusted address the header is ignored"
    );
    assert_eq!(terminate(server), Some(0));
}
