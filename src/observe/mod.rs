//! What the gateway reports: Prometheus metrics (served on the admin listener) and one JSON
//! access-log line per request.

mod access_log;
mod admin;
mod config;
mod metrics;
mod selection;

pub use access_log::{now_rfc3339, unix_now};
pub use access_log::{AccessLog, AccessRecord, UsageFields};
pub use admin::AdminApp;
pub(crate) use admin::{authorized, error, percent_decode, unauthorized, Answer};
pub use metrics::{Metrics, Produced};
pub use selection::{BackendSeries, SelectionMetrics};
