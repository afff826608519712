//! What the gateway reports: Prometheus metrics (served by the admin listener) and one JSON
//! access-log line per request.

mod access_log;
mod cache;
mod config;
pub mod log_guard;
mod metrics;
mod selection;

pub use access_log::{AccessLog, AccessRecord, UsageFields};
pub use cache::CacheMetrics;
pub use metrics::{Metrics, Produced};
pub use selection::{BackendSeries, SelectionMetrics};
