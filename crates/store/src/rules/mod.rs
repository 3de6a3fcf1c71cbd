//! The use cases, each written once over [`crate::db::Db`] and run by both backends: SQLite
//! inside its writer's group commit or on a reader, PostgreSQL inside a transaction that is
//! run again when it lost a race to another node. Reads that PostgreSQL must lock go through
//! [`crate::db::locking`]; everything else is the same statement on both.

pub(crate) mod aggregators;
pub(crate) mod cards;
pub(crate) mod clicktopay;
pub(crate) mod consumers;
pub(crate) mod directory;
pub(crate) mod issuers;
pub(crate) mod lifecycle;
pub(crate) mod notify;
pub(crate) mod operators;
pub(crate) mod renewals;
pub(crate) mod trail;
