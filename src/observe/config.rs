//! Config metrics: which version is loaded, since when, and how reloads went.

use prometheus::{Gauge, IntCounterVec, IntGaugeVec, Opts, Registry};

pub struct ConfigMetrics {
    info: IntGaugeVec,
    loaded: Gauge,
    reloads: IntCounterVec,
}

impl ConfigMetrics {
    pub fn new(r: &Registry) -> prometheus::Result<ConfigMetrics> {
        let info = IntGaugeVec::new(
            Opts::new(
                "tollgate_config_info",
                "1 for the loaded config's version (a hash of its files)",
            ),
            &["version"],
        )?;
        let loaded = Gauge::new(
            "tollgate_config_loaded_timestamp_seconds",
            "When the loaded config was applied (Unix time)",
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "tollgate_config_reloads_total",
                "Config reloads by result (applied, rejected) and trigger (signal, watch, admin, rollback)",
            ),
            &["result", "trigger"],
        )?;
        r.register(Box::new(info.clone()))?;
        r.register(Box::new(loaded.clone()))?;
        r.register(Box::new(reloads.clone()))?;
        Ok(ConfigMetrics {
            info,
            loaded,
            reloads,
        })
    }

    /// `version` is now the loaded one (the only series `tollgate_config_info` has).
    pub fn loaded(&self, version: &str, at_unix: f64) {
        self.info.reset();
        self.info.with_label_values(&[version]).set(1);
        self.loaded.set(at_unix);
    }

    pub fn reload(&self, applied: bool, trigger: &str) {
        let result = if applied { "applied" } else { "rejected" };
        self.reloads.with_label_values(&[result, trigger]).inc();
    }
}
