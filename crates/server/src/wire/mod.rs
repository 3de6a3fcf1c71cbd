//! The wire: JSON bodies in (read strictly into domain types) and DTOs out.

pub mod card;
pub mod consumer;
pub mod json;
pub mod pi;
