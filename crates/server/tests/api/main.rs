//! The API integration suite: the real router on 127.0.0.1:0, a fresh SQLite database per
//! test, real crypto, driven over HTTP like an issuer backend would.

mod abuse;
mod aggregators;
mod bad_input;
mod bodies;
mod card_encrypt;
mod cards;
mod clicktopay;
mod connections;
mod consumers;
mod data_dir;
mod exhaustion;
mod fake_backend;
mod harness;
mod issuer_sim;
mod lifecycle;
mod mtls;
mod notifications;
mod operators;
mod portal;
mod privacy;
mod process;
mod restart;
mod routing;
mod token;
mod v1;
mod v1_trail;
