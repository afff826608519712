//! The `[pricing]` section and `[[prices]]` entries: model prices in USD per 1M tokens, from
//! the operator's config and an optional price file (`pricing.file`, the same `[[prices]]`
//! array and an `updated` date). An operator entry replaces the file's entry for the same
//! pattern and is checked before the file's entries.

use super::schema::{RawPrice, RawPriceFile, RawPricing};
use super::{load, ConfigError, Validator};
use super::{Price, PriceTable};
use std::collections::{HashMap, HashSet};

impl Validator<'_, '_> {
    pub(super) fn prices(&mut self, pricing: RawPricing, raw: Vec<RawPrice>) -> PriceTable {
        let mut problems = Vec::new();
        let mut entries = price_entries(raw, &mut problems);
        for (path, message) in problems {
            self.err(path, message);
        }
        if let Some(file) = pricing.file.filter(|f| !f.is_empty()) {
            if let Some(from_file) = self.price_file(&file) {
                let operator: HashSet<&str> = entries.iter().map(|(m, _)| m.as_str()).collect();
                let kept: Vec<_> = from_file
                    .into_iter()
                    .filter(|(m, _)| !operator.contains(m.as_str()))
                    .collect();
                entries.extend(kept);
            }
        }
        PriceTable::new(entries)
    }

    /// Reads and checks the price file; its problems are reported at `pricing.file`, each
    /// naming the file, its line and key path there.
    fn price_file(&mut self, file: &str) -> Option<Vec<(String, Price)>> {
        let path = match &self.base_dir {
            Some(dir) => dir.join(file),
            None => file.into(),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                self.err(
                    "pricing.file",
                    format!("cannot read price file `{}`: {e}", path.display()),
                );
                return None;
            }
        };
        let mut errors = Vec::new();
        let entries = parse_price_file(&text, self.env, &mut errors);
        for e in errors {
            let message = match e.line {
                Some(_) => format!("{file} {e}"),
                None => format!("{file}: {e}"),
            };
            self.err("pricing.file", message);
        }
        entries
    }
}

/// Parses a price file with the config's own machinery, so errors carry key paths and lines
/// (relative to the price file). `None` when it could not be read as a price file at all.
fn parse_price_file(
    text: &str,
    env: load::EnvLookup<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<(String, Price)>> {
    let (value, spans) = load::parse(text, env, errors)?;
    let raw: RawPriceFile = super::deserialize_located(value, &spans, errors)?;
    let mut problems = Vec::new();
    if let Some(d) = raw.updated.as_deref() {
        if !is_date(d) {
            problems.push((
                "updated".to_string(),
                "must be a date, YYYY-MM-DD".to_string(),
            ));
        }
    }
    let entries = price_entries(raw.prices, &mut problems);
    errors.extend(problems.into_iter().map(|(path, message)| ConfigError {
        file: None,
        line: spans.line_of(&path),
        path,
        message,
    }));
    Some(entries)
}

/// Checks `[[prices]]` entries, pushing (key path, message) for each problem.
fn price_entries(raw: Vec<RawPrice>, problems: &mut Vec<(String, String)>) -> Vec<(String, Price)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let p = format!("prices[{i}]");
        let before = problems.len();
        if r.model.is_empty() {
            problems.push((format!("{p}.model"), "must not be empty".into()));
        } else if let Some(prev) = seen.insert(r.model.clone(), i) {
            problems.push((
                format!("{p}.model"),
                format!("`{}` is already priced by prices[{prev}]", r.model),
            ));
        }
        let prices = [
            ("input", Some(r.input)),
            ("cached_input", r.cached_input),
            ("cache_write", r.cache_write),
            ("output", Some(r.output)),
        ];
        for (key, v) in prices {
            match v {
                Some(v) if !v.is_finite() => {
                    problems.push((format!("{p}.{key}"), "must be a finite number".into()))
                }
                Some(v) if v < 0.0 => problems.push((format!("{p}.{key}"), "must be >= 0".into())),
                _ => {}
            }
        }
        if problems.len() == before {
            out.push((
                r.model,
                Price {
                    input: r.input,
                    cached_input: r.cached_input,
                    cache_write: r.cache_write,
                    output: r.output,
                },
            ));
        }
    }
    out
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::{Path, PathBuf};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "tollgate-prices-{}-{name}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, file: &str, text: &str) -> PathBuf {
            let p = self.0.join(file);
            std::fs::write(&p, text).unwrap();
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn load_in(text: &str, dir: &Path) -> Result<Config, Vec<ConfigError>> {
        Config::from_str_in(text, &|_| None, Some(dir))
    }

    const FILE: &str = r#"updated = "2026-11-01"

[[prices]]
model = "gpt-4o*"
input = 2.5
cached_input = 1.25
output = 10

[[prices]]
model = "my-llama*"
input = 1
output = 1
"#;

    #[test]
    fn file_and_override() {
        let dir = TempDir::new("override");
        dir.write("prices.toml", FILE);
        let c = load_in(
            "[pricing]\nfile = \"prices.toml\"\n\
             [[prices]]\nmodel = \"my-llama*\"\ninput = 0.2\ncached_input = 0.1\ncache_write = 0.25\noutput = 0.6\n\
             [[prices]]\nmodel = \"gpt-4o-mini*\"\ninput = 0.15\noutput = 0.6\n",
            &dir.0,
        )
        .unwrap();
        let p = &c.prices;
        assert_eq!(p.len(), 3, "the file's my-llama* is replaced");
        assert_eq!(p.find("my-llama-3-70b").unwrap().input, 0.2);
        assert_eq!(p.find("my-llama-3-70b").unwrap().cache_write, Some(0.25));
        assert_eq!(p.find("gpt-4o-2024-08-06").unwrap().input, 2.5);
        assert_eq!(p.find("gpt-4o-mini").unwrap().input, 0.15);
        let gpt4o = p.find("gpt-4o").unwrap();
        assert_eq!((gpt4o.cached_input, gpt4o.output), (Some(1.25), 10.0));
        assert!(p.find("claude-3-haiku").is_none());
    }

    #[test]
    fn load_resolves_the_file_next_to_the_config() {
        let dir = TempDir::new("load");
        dir.write("prices.toml", FILE);
        let main = dir.write(
            "tollgate.toml",
            "[server]\nopen = true\n[pricing]\nfile = \"prices.toml\"\n\
             [[backends]]\nname = \"b\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:1\"\n\
             [[routes]]\nmodels = [\"m\"]\ntargets = [{ backend = \"b\" }]\n",
        );
        let c = Config::load(main.to_str().unwrap()).unwrap();
        assert_eq!(c.prices.find("gpt-4o").unwrap().output, 10.0);
        // No pricing section: no prices.
        let c = Config::from_str_with_env("", &|_| None).unwrap();
        assert!(c.prices.is_empty());
    }

    #[test]
    fn bad_value_in_the_file_is_located() {
        let dir = TempDir::new("bad");
        let bad = FILE.replace("output = 1\n", "output = -1\n");
        dir.write("prices.toml", &bad);
        let e = load_in("\n[pricing]\nfile = \"prices.toml\"\n", &dir.0).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "pricing.file");
        assert_eq!(e[0].line, Some(3));
        assert_eq!(
            e[0].message,
            "prices.toml line 12: `prices[1].output`: must be >= 0"
        );
        assert_eq!(
            e[0].to_string(),
            "line 3: `pricing.file`: prices.toml line 12: `prices[1].output`: must be >= 0"
        );

        // An unknown key and a wrong type are located the same way.
        dir.write("prices.toml", &FILE.replace("input = 1\n", "inptu = 1\n"));
        let e = load_in("[pricing]\nfile = \"prices.toml\"\n", &dir.0).unwrap_err();
        assert!(e[0].message.starts_with("prices.toml line 11: "), "{e:?}");
        assert!(e[0].message.contains("inptu"), "{e:?}");
        dir.write("prices.toml", &FILE.replace("= 2.5", "= \"cheap\""));
        let e = load_in("[pricing]\nfile = \"prices.toml\"\n", &dir.0).unwrap_err();
        assert!(
            e[0].message
                .starts_with("prices.toml line 5: `prices[0].input`: invalid type"),
            "{e:?}"
        );
        dir.write("prices.toml", "updated = \"Nov 2026\"\n[pricing]\n");
        let e = load_in("[pricing]\nfile = \"prices.toml\"\n", &dir.0).unwrap_err();
        assert!(e[0].message.contains("pricing"), "{e:?}");
        dir.write("prices.toml", "updated = \"Nov 2026\"\n");
        let e = load_in("[pricing]\nfile = \"prices.toml\"\n", &dir.0).unwrap_err();
        assert_eq!(
            e[0].message,
            "prices.toml line 1: `updated`: must be a date, YYYY-MM-DD"
        );
        dir.write("prices.toml", "[[prices]\n");
        let e = load_in("[pricing]\nfile = \"prices.toml\"\n", &dir.0).unwrap_err();
        assert!(
            e[0].message.starts_with("prices.toml line 1: invalid TOML"),
            "{e:?}"
        );
    }

    #[test]
    fn operator_entries_are_checked() {
        let e = Config::from_str_with_env(
            "[[prices]]\nmodel = \"m\"\ninput = -0.5\noutput = 1\n\
             [[prices]]\nmodel = \"m\"\ninput = 1\noutput = 1\ncache_write = -1\n\
             [[prices]]\nmodel = \"\"\ninput = 1\noutput = 1\n",
            &|_| None,
        )
        .unwrap_err();
        let at: Vec<_> = e.iter().map(|e| (e.path.as_str(), e.line)).collect();
        assert_eq!(
            at,
            [
                ("prices[0].input", Some(3)),
                ("prices[1].model", Some(6)),
                ("prices[1].cache_write", Some(9)),
                ("prices[2].model", Some(11)),
            ],
            "{e:?}"
        );
        assert_eq!(e[0].message, "must be >= 0");

        let e = Config::from_str_with_env("[[prices]]\nmodel = \"m\"\ninput = 1\n", &|_| None)
            .unwrap_err();
        assert!(e[0].message.contains("missing field `output`"), "{e:?}");
        let e = Config::from_str_with_env("[pricing]\nfiles = \"x\"\n", &|_| None).unwrap_err();
        assert_eq!(e[0].path, "pricing.files", "{e:?}");
    }

    #[test]
    fn missing_file_names_pricing_file() {
        let dir = TempDir::new("missing");
        let e = load_in("[pricing]\nfile = \"nope.toml\"\n", &dir.0).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "pricing.file");
        assert_eq!(e[0].line, Some(2));
        assert!(e[0].message.contains("nope.toml"), "{e:?}");
    }

    #[test]
    fn shipped_price_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/prices.toml");
        let c = Config::from_str_with_env(&format!("[pricing]\nfile = {path:?}\n"), &|_| None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let p = &c.prices;
        let input = |m: &str| {
            p.find(m)
                .unwrap_or_else(|| panic!("no price for {m}"))
                .input
        };
        assert_eq!(input("gpt-4o"), 2.5);
        assert_eq!(input("gpt-4o-2024-08-06"), 2.5);
        assert_eq!(input("gpt-4o-mini"), 0.15);
        assert_eq!(input("gpt-4o-mini-2024-07-18"), 0.15);
        assert_eq!(input("gpt-4.1-nano"), 0.1);
        assert_eq!(input("claude-sonnet-4-5-20250929"), 3.0);
        assert_eq!(
            p.find("claude-3-5-haiku-20241022").unwrap().cache_write,
            Some(1.0)
        );
        assert_eq!(input("anthropic.claude-3-haiku-20240307-v1:0"), 0.25);
        assert_eq!(input("us.anthropic.claude-sonnet-4-20250514-v1:0"), 3.0);
        assert_eq!(input("gemini-2.5-flash-lite"), 0.1);
        assert_eq!(input("gemini-2.5-flash"), 0.3);
        // The demo models have (made-up) prices too.
        assert!(p.find("demo").is_some());
        assert!(p.find("demo-claude").is_some());
        assert!(p.find("mock-large").is_some());
        assert!(p.find("llama3").is_none());
        // Embeddings: no output.
        assert_eq!(p.find("text-embedding-3-small").unwrap().output, 0.0);
    }
}
