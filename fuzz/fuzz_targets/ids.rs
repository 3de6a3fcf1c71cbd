//! Fuzzes the id parsers: issuerId, consumerId, cardId, cardProductId, correlation ids, x-user-id, kid; the properties are in `d1_registry::fuzzing::ids`.
//! Run with `cargo fuzz run ids` (see the README's Fuzzing section).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| d1_registry::fuzzing::ids(data));
