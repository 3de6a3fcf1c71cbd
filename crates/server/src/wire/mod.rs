//! The wire: JSON bodies in (one serde type each, read by [`json`] and parsed into domain
//! types in D1's order of checks, [`checks`]) and DTOs out.

pub mod card;
pub mod checks;
pub mod consumer;
pub mod json;
pub mod lifecycle;
pub mod pi;
