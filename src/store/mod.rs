//! Durable state: the usage ledger and quota/budget counters, in SQLite (embedded default) or Redis (a fleet).

pub mod cli;
pub mod ledger;
pub mod redis;
pub mod report;
pub mod schema;
pub mod time;
