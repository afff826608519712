//! Durable state: the usage ledger and quota/budget counters, in SQLite (embedded default) or
//! Redis (a fleet); the Responses API's kept responses, in memory or Redis; managed keys and
//! their audit log.

pub mod cli;
pub mod insert;
pub mod kept_response;
pub mod keys;
pub mod keys_redis;
pub mod ledger;
pub mod line;
pub mod link;
pub mod redis;
pub mod report;
pub mod resp;
pub mod responses;
pub mod responses_redis;
pub mod schema;
#[cfg(test)]
mod schema_tests;
