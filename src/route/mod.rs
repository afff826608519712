//! Model name → route. Exact names win over globs; among globs the first route in the file
//! wins. Also renders `/v1/models`.

use crate::config::{Config, RouteSpec};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Route {
    pub name: Arc<str>,
    pub targets: Vec<Target>,
    /// The targets' priorities, distinct and in order (computed once, not per request).
    pub tiers: Vec<u32>,
    pub retry: RetryPolicy,
    /// Output tokens reserved for a request without `max_tokens`.
    pub default_output_tokens: u64,
    pub strategy: Strategy,
    /// How long a request waits for a slot when every target is busy.
    pub queue_timeout: std::time::Duration,
    /// What translations do with fields they do not carry.
    pub fields: crate::config::FieldRules,
    /// Replies cached (module `cache`): for how long, per key or shared.
    pub cache: Option<crate::config::RouteCache>,
}

pub use crate::config::{AffinityKey, RetryPolicy, Strategy};

pub struct Target {
    /// Index into the gateway's backends.
    pub backend: usize,
    /// Model name sent upstream instead of the client's.
    pub model: Option<Arc<str>>,
    /// Share of traffic within its tier.
    pub weight: u32,
    /// Tier: 0 first.
    pub priority: u32,
    pub region: Option<Arc<str>>,
}

/// A match: the route and a bounded label for metrics (the exact name, or the glob itself,
/// so clients cannot mint unbounded label values).
pub struct Matched<'r> {
    pub route: &'r Route,
    pub model_label: &'r Arc<str>,
}

pub struct Router {
    routes: Vec<Route>,
    /// foldhash, randomly seeded (not SipHash): looked up on every request.
    exact: HashMap<Box<str>, (usize, Arc<str>), foldhash::fast::RandomState>,
    globs: Vec<(Arc<str>, usize)>,
    models_json: Bytes,
    models_json_anthropic: Bytes,
    /// The names those lists hold.
    listed: Vec<String>,
}

impl Router {
    pub fn new(cfg: &Config, enabled: impl Fn(usize) -> bool) -> Router {
        let mut exact = HashMap::default();
        let mut globs = Vec::new();
        let mut listed = Vec::new();
        let routes = cfg
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                for m in &r.models {
                    if m.contains('*') {
                        globs.push((Arc::from(m.as_str()), i));
                    } else {
                        exact.insert(Box::from(m.as_str()), (i, Arc::from(m.as_str())));
                        if r.targets.iter().any(|t| enabled(t.backend)) {
                            listed.push(m.clone());
                        }
                    }
                }
                build_route(r)
            })
            .collect();
        Router {
            routes,
            exact,
            globs,
            models_json: models_json(&listed),
            models_json_anthropic: models_json_anthropic(&listed),
            listed,
        }
    }

    pub fn find(&self, model: &str) -> Option<Matched<'_>> {
        if let Some((i, label)) = self.exact.get(model) {
            return Some(Matched {
                route: &self.routes[*i],
                model_label: label,
            });
        }
        self.globs
            .iter()
            .find(|(g, _)| glob_match(g, model))
            .map(|(g, i)| Matched {
                route: &self.routes[*i],
                model_label: g,
            })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The body of `GET /v1/models`: the configured exact names whose route has an enabled backend.
    pub fn models_json(&self) -> &Bytes {
        &self.models_json
    }

    /// The same list in Anthropic's shape, for clients that send `anthropic-version`.
    pub fn models_json_anthropic(&self) -> &Bytes {
        &self.models_json_anthropic
    }

    /// The list (Anthropic's shape or OpenAI's) of the models `allows` accepts: what a key
    /// limited to some models sees.
    pub fn models_json_only(&self, anthropic: bool, allows: impl Fn(&str) -> bool) -> Bytes {
        let names: Vec<String> = self.listed.iter().filter(|m| allows(m)).cloned().collect();
        match anthropic {
            true => models_json_anthropic(&names),
            false => models_json(&names),
        }
    }
}

fn build_route(r: &RouteSpec) -> Route {
    let mut tiers: Vec<u32> = r.targets.iter().map(|t| t.priority).collect();
    tiers.sort_unstable();
    tiers.dedup();
    Route {
        tiers,
        name: Arc::from(r.name.as_str()),
        targets: r
            .targets
            .iter()
            .map(|t| Target {
                backend: t.backend,
                model: t.model.as_deref().map(Arc::from),
                weight: t.weight,
                priority: t.priority,
                region: t.region.as_deref().map(Arc::from),
            })
            .collect(),
        retry: r.retry.clone(),
        fields: r.fields,
        cache: r.cache,
        default_output_tokens: r.default_output_tokens,
        strategy: r.strategy.clone(),
        queue_timeout: r.queue_timeout,
    }
}

fn models_json(names: &[String]) -> Bytes {
    #[derive(serde::Serialize)]
    struct Model<'a> {
        id: &'a str,
        object: &'static str,
        created: u64,
        owned_by: &'static str,
    }
    #[derive(serde::Serialize)]
    struct List<'a> {
        object: &'static str,
        data: Vec<Model<'a>>,
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let list = List {
        object: "list",
        data: names
            .iter()
            .map(|id| Model {
                id,
                object: "model",
                created,
                owned_by: "tollgate",
            })
            .collect(),
    };
    Bytes::from(serde_json::to_vec(&list).unwrap_or_default())
}

/// Anthropic's `ModelInfo` list. The route knows no release date, context window, output cap
/// or capabilities of what serves it: the release date is the epoch (what Anthropic's type says
/// for an unknown one), the rest null.
fn models_json_anthropic(names: &[String]) -> Bytes {
    #[derive(serde::Serialize)]
    struct Model<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a str,
        display_name: &'a str,
        created_at: &'static str,
        max_input_tokens: Option<u64>,
        max_tokens: Option<u64>,
        capabilities: Option<()>,
    }
    #[derive(serde::Serialize)]
    struct List<'a> {
        data: Vec<Model<'a>>,
        has_more: bool,
        first_id: Option<&'a str>,
        last_id: Option<&'a str>,
    }
    let list = List {
        data: names
            .iter()
            .map(|id| Model {
                kind: "model",
                id,
                display_name: id,
                created_at: "1970-01-01T00:00:00Z",
                max_input_tokens: None,
                max_tokens: None,
                capabilities: None,
            })
            .collect(),
        has_more: false,
        first_id: names.first().map(String::as_str),
        last_id: names.last().map(String::as_str),
    };
    Bytes::from(serde_json::to_vec(&list).unwrap_or_default())
}

/// `*` matches any run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("gpt-4o-*", "gpt-4o-mini"));
        assert!(glob_match("gpt-4o-*", "gpt-4o-"));
        assert!(!glob_match("gpt-4o-*", "gpt-4o"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("claude-*-latest", "claude-3-5-sonnet-latest"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn exact_beats_glob_and_labels_are_bounded() {
        let src = r#"
[[backends]]
name = "a"
provider = "openai"
url = "http://127.0.0.1:1"
[[routes]]
name = "globby"
models = ["gpt-*"]
targets = [{ backend = "a" }]
[[routes]]
name = "exact"
models = ["gpt-4o"]
targets = [{ backend = "a", model = "x" }]
"#;
        let cfg = Config::from_str_with_env(src, &|_| None).unwrap();
        let r = Router::new(&cfg, |_| true);
        assert_eq!(&*r.find("gpt-4o").unwrap().route.name, "exact");
        let m = r.find("gpt-anything-at-all").unwrap();
        assert_eq!(&*m.route.name, "globby");
        assert_eq!(&**m.model_label, "gpt-*");
        assert!(r.find("claude").is_none());
        let v: serde_json::Value = serde_json::from_slice(r.models_json()).unwrap();
        assert_eq!(v["data"][0]["id"], "gpt-4o");
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        let m = &v["data"][0];
        let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["created", "id", "object", "owned_by"]);
        assert_eq!(
            (m["object"].as_str(), v["object"].as_str()),
            (Some("model"), Some("list"))
        );
        assert!(m["created"].is_u64());
        let v: serde_json::Value = serde_json::from_slice(r.models_json_anthropic()).unwrap();
        // Every field of Anthropic's current ModelInfo, and the page's cursors.
        let m = &v["data"][0];
        let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
        let want = [
            "capabilities",
            "created_at",
            "display_name",
            "id",
            "max_input_tokens",
            "max_tokens",
            "type",
        ];
        assert_eq!(keys, want);
        assert_eq!(m["type"], "model");
        assert_eq!(m["display_name"], "gpt-4o");
        assert_eq!(m["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["first_id"], "gpt-4o");
        assert_eq!(v["last_id"], "gpt-4o");
        assert_eq!(v["has_more"], false);
    }
}
