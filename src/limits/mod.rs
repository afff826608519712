//! Rate limits, token and cost reservations, budgets, prices.

pub mod estimate;
