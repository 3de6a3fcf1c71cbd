//! d1-registry, the service: the axum app, its configuration and telemetry, and the command
//! line of the one binary. A request flows route → extractors → domain types → store → DTO.

pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod clicktopay;
pub mod clock;
pub mod config;
pub mod context;
pub mod error;
pub mod extract;
pub mod fuzzing;
pub mod keyring;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod operators;
pub mod policy;
pub mod portal;
pub mod renewals;
pub mod routes;
pub mod serve;
pub mod sim;
pub mod state;
pub mod supervise;
pub mod telemetry;
pub mod wire;
