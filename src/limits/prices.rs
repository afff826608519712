//! The cost of one request from its normalised usage and the model's price (`[[prices]]`).

pub use crate::config::{Price, PriceTable};
use crate::formats::Usage;

/// A price applied to usage.
pub trait Cost {
    /// The cost of `u` in USD.
    fn cost(&self, u: &Usage) -> f64;
}

impl Cost for Price {
    fn cost(&self, u: &Usage) -> f64 {
        let cached = self.cached_input.unwrap_or(self.input);
        let write = self.cache_write.unwrap_or(self.input);
        (u.uncached_input() as f64 * self.input
            + u.cached_input as f64 * cached
            + u.cache_creation as f64 * write
            + u.output as f64 * self.output)
            / 1e6
    }
}

/// The cost of `u` in USD for `model`, if it has a price.
pub fn cost_of(table: &PriceTable, model: &str, u: &Usage) -> Option<f64> {
    table.find(model).map(|p| p.cost(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: f64, output: f64) -> Price {
        Price {
            input,
            cached_input: None,
            cache_write: None,
            output,
        }
    }

    #[test]
    fn cost_arithmetic() {
        let u = Usage {
            input: 1_000_000 + 200_000 + 100_000,
            cached_input: 200_000,
            cache_creation: 100_000,
            output: 500_000,
            reasoning: 100_000,
        };
        let full = Price {
            input: 3.0,
            cached_input: Some(0.3),
            cache_write: Some(3.75),
            output: 15.0,
        };
        // 1M × 3 + 0.2M × 0.3 + 0.1M × 3.75 + 0.5M × 15
        let want = 3.0 + 0.06 + 0.375 + 7.5;
        assert!((full.cost(&u) - want).abs() < 1e-9, "{}", full.cost(&u));

        // Both cache prices absent: every input token at `input`'s price.
        let plain = price(2.0, 8.0);
        let want = 1.3 * 2.0 + 0.5 * 8.0;
        assert!((plain.cost(&u) - want).abs() < 1e-9, "{}", plain.cost(&u));

        // Only the cache write absent.
        let half = Price {
            cache_write: None,
            ..full.clone()
        };
        let want = 3.0 + 0.06 + 0.3 + 7.5;
        assert!((half.cost(&u) - want).abs() < 1e-9, "{}", half.cost(&u));

        let t = PriceTable::new(vec![("claude-*".into(), full)]);
        let c = cost_of(&t, "claude-sonnet-4-5", &u).unwrap();
        assert!((c - (3.0 + 0.06 + 0.375 + 7.5)).abs() < 1e-9);
        assert_eq!(cost_of(&t, "claude-x", &Usage::default()), Some(0.0));
    }

    #[test]
    fn inconsistent_usage_does_not_go_negative() {
        // More cached than total input (a provider's odd report): the uncached part is 0.
        let u = Usage {
            input: 10,
            cached_input: 20,
            ..Usage::default()
        };
        assert!(price(1.0, 1.0).cost(&u) >= 0.0);
    }
}
