//! The value types of `[[limits]]`: who a limit counts (scope), what it counts (measure), over
//! which period, and how much.

use crate::clock::Period;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Key,
    User,
    Team,
    Model,
    Route,
    Backend,
    Global,
}

impl Scope {
    const ALL: [Scope; 7] = [
        Scope::Key,
        Scope::User,
        Scope::Team,
        Scope::Model,
        Scope::Route,
        Scope::Backend,
        Scope::Global,
    ];

    /// The scope a config names (`key`, `user`, ...).
    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::User => "user",
            Scope::Team => "team",
            Scope::Model => "model",
            Scope::Route => "route",
            Scope::Backend => "backend",
            Scope::Global => "global",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Requests,
    Tokens,
    /// USD.
    Cost,
    /// Requests in flight.
    Concurrent,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Requests => "requests",
            Measure::Tokens => "tokens",
            Measure::Cost => "cost_usd",
            Measure::Concurrent => "concurrent",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cap {
    pub measure: Measure,
    pub period: Period,
    pub limit: f64,
}

impl Cap {
    pub fn measure_name(&self) -> &'static str {
        self.measure.name()
    }

    /// Quotas (tokens or spend per day or month) answer `insufficient_quota`; the rest are
    /// rate limits.
    pub fn is_quota(&self) -> bool {
        self.measure == Measure::Cost
            || (self.measure == Measure::Tokens
                && matches!(self.period, Period::Day | Period::Month))
    }
}

/// One `[[limits]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSpec {
    pub scope: Scope,
    /// Only this key/user/...; `None`: each one separately.
    pub matching: Option<String>,
    pub caps: Vec<Cap>,
}
