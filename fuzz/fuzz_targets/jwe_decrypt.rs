//! Fuzzes the narrow JWE decrypt path: any input must be refused or decrypted, never panic.
//! Run with `cargo fuzz run jwe_decrypt` (see README).

#![no_main]

use std::sync::OnceLock;

use d1_crypto::ec::AgreementKey;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static AgreementKey {
    static KEY: OnceLock<AgreementKey> = OnceLock::new();
    KEY.get_or_init(|| AgreementKey::generate().expect("a P-256 key"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(parsed) = d1_crypto::jwe::parse(text) {
            let _ = parsed.kid();
            let _ = parsed.decrypt(key());
        }
    }
});
