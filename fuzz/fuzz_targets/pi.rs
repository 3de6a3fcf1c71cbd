//! Fuzzes PI bodies: `personalInformation` and the issuer backend's `consumerInfo`; the properties are in `d1_registry::fuzzing::pi`.
//! Run with `cargo fuzz run pi` (see the README's Fuzzing section).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| d1_registry::fuzzing::pi(data));
