//! Fuzzes the request bodies read through `wire::json` (first byte picks the type); the properties are in `d1_registry::fuzzing::bodies`.
//! Run with `cargo fuzz run bodies` (see the README's Fuzzing section).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| d1_registry::fuzzing::bodies(data));
