//! Durable state: the usage ledger and quota/budget counters, in SQLite (embedded default) or
//! Redis (a fleet); the Responses API's kept responses, in memory or Redis.

pub mod cli;
pub mod ledger;
pub mod link;
pub mod redis;
pub mod report;
pub mod responses;
pub mod responses_redis;
pub mod schema;
