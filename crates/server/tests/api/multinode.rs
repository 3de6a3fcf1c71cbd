//! Several `d1-registry serve` processes on one PostgreSQL database.
