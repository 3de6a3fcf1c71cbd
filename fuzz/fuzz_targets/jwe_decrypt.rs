//! Fuzzes JWEs (first byte 0: as sent; else a sealed card plaintext, read as Register card does); the properties are in `d1_registry::fuzzing::jwe`.
//! Run with `cargo fuzz run jwe_decrypt` (see the README's Fuzzing section).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| d1_registry::fuzzing::jwe(data));
