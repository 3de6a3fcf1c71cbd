//! Fuzzes token-endpoint assertions and access tokens (first byte 0: as sent; else signed claims); the properties are in `d1_registry::fuzzing::assertion`.
//! Run with `cargo fuzz run assertion` (see the README's Fuzzing section).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| d1_registry::fuzzing::assertion(data));
