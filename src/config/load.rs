//! Turns TOML text into a JSON value with `${ENV}` expanded, remembering where each key path
//! sits in the file so that every error can name its line.

use super::ConfigError;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::ops::Range;
use toml_edit::{Item, Table, Value as TomlValue};

/// Key paths (`routes[1].targets[0].backend`) mapped to their byte span in the source.
pub struct Spans<'a> {
    src: &'a str,
    spans: HashMap<String, Range<usize>>,
}

impl Spans<'_> {
    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(r) = self.spans.get(p) {
                return Some(line_at(self.src, r.start));
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

pub fn line_at(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Looks up an environment variable; a function so tests can supply their own.
pub type EnvLookup<'e> = &'e dyn Fn(&str) -> Option<String>;

pub fn parse<'a>(
    src: &'a str,
    env: EnvLookup<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<(Value, Spans<'a>)> {
    let doc = match toml_edit::Document::parse(src) {
        Ok(d) => d,
        Err(e) => {
            errors.push(ConfigError {
                file: None,
                path: String::new(),
                line: e.span().map(|s| line_at(src, s.start)),
                message: format!("invalid TOML: {}", e.message().trim()),
            });
            return None;
        }
    };
    let mut spans = Spans {
        src,
        spans: HashMap::new(),
    };
    let mut walker = Walker {
        env,
        errors,
        spans: &mut spans.spans,
        src,
    };
    let value = walker.table(doc.as_table(), "");
    Some((value, spans))
}

struct Walker<'w, 'e> {
    env: EnvLookup<'e>,
    errors: &'w mut Vec<ConfigError>,
    spans: &'w mut HashMap<String, Range<usize>>,
    src: &'w str,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl Walker<'_, '_> {
    fn table(&mut self, t: &Table, path: &str) -> Value {
        let mut map = Map::new();
        for (k, item) in t.iter() {
            let p = join(path, k);
            if let Some((key, _)) = t.get_key_value(k) {
                if let Some(s) = key.span() {
                    self.spans.insert(p.clone(), s);
                }
            }
            if let Some(v) = self.item(item, &p) {
                map.insert(k.to_string(), v);
            }
        }
        Value::Object(map)
    }

    fn item(&mut self, item: &Item, path: &str) -> Option<Value> {
        match item {
            Item::None => None,
            Item::Value(v) => Some(self.value(v, path)),
            Item::Table(t) => {
                if let Some(s) = t.span() {
                    self.spans.entry(path.to_string()).or_insert(s);
                }
                Some(self.table(t, path))
            }
            Item::ArrayOfTables(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, t) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    if let Some(s) = t.span() {
                        self.spans.insert(p.clone(), s);
                    }
                    out.push(self.table(t, &p));
                }
                Some(Value::Array(out))
            }
        }
    }

    fn value(&mut self, v: &TomlValue, path: &str) -> Value {
        if let Some(s) = v.span() {
            self.spans.entry(path.to_string()).or_insert(s);
        }
        match v {
            TomlValue::String(s) => match expand_env(s.value(), self.env) {
                Ok(x) => Value::String(x),
                Err(msg) => {
                    let line = v.span().map(|s| line_at(self.src, s.start));
                    self.errors.push(ConfigError {
                        file: None,
                        path: path.to_string(),
                        line,
                        message: msg,
                    });
                    Value::String(String::new())
                }
            },
            TomlValue::Integer(i) => Value::from(*i.value()),
            TomlValue::Float(f) => serde_json::Number::from_f64(*f.value())
                .map(Value::Number)
                .unwrap_or(Value::Null),
            TomlValue::Boolean(b) => Value::Bool(*b.value()),
            TomlValue::Datetime(d) => Value::String(d.value().to_string()),
            TomlValue::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| self.value(x, &format!("{path}[{i}]")))
                    .collect(),
            ),
            TomlValue::InlineTable(t) => {
                let mut map = Map::new();
                for (k, x) in t.iter() {
                    let p = join(path, k);
                    map.insert(k.to_string(), self.value(x, &p));
                }
                Value::Object(map)
            }
        }
    }
}

/// Expands `${VAR}` and `${VAR:-default}`; `$${` is a literal `${`. An unset variable without
/// a default is an error that names the variable (never its value).
pub fn expand_env(s: &str, env: EnvLookup<'_>) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = t;
        } else if let Some(t) = tail.strip_prefix("${") {
            let end = t
                .find('}')
                .ok_or_else(|| "unterminated `${` in string".to_string())?;
            let inner = &t[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid environment variable name `{name}`"));
            }
            match (env(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!("environment variable `{name}` is not set"));
                }
            }
            rest = &t[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_and_escapes() {
        assert_eq!(expand_env("x${A}y", &env).unwrap(), "xalphay");
        assert_eq!(expand_env("${MISSING:-d}", &env).unwrap(), "d");
        assert_eq!(expand_env("${EMPTY:-d}", &env).unwrap(), "");
        assert_eq!(expand_env("$${A}", &env).unwrap(), "${A}");
        assert_eq!(expand_env("cost $5", &env).unwrap(), "cost $5");
        assert!(expand_env("${MISSING}", &env)
            .unwrap_err()
            .contains("MISSING"));
        assert!(expand_env("${A", &env).is_err());
        assert!(expand_env("${A-B}", &env).is_err());
    }

    #[test]
    fn spans_name_lines() {
        let src = "[server]\nlisten = [\"a\"]\n\n[[routes]]\nmodels = [\"m\"]\n";
        let mut errs = vec![];
        let (_, spans) = parse(src, &env, &mut errs).unwrap();
        assert_eq!(spans.line_of("server.listen"), Some(2));
        assert_eq!(spans.line_of("routes[0].models[0]"), Some(5));
        assert_eq!(spans.line_of("routes[0].unknown"), Some(4));
    }
}
