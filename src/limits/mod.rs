//! Rate limits, token and cost reservations, budgets, prices.

pub mod alerts;
mod bpe;
mod bpe_blob;
pub mod counters;
pub mod estimate;
pub mod lease;
mod limiter;
mod memo;
pub mod prices;
mod split;
mod walk;

pub use limiter::{
    reset_text, write_reset, Cap, Demand, Denied, LimitSpec, Limiter, Measure, RateHeaders,
    Refusal, Remaining, Reservation, Scope, Subject,
};
