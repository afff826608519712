//! `namespace` tools (Codex groups each MCP server's functions under one): flattened into plain
//! function tools for targets that have no namespaces, and named back in the reply, where a
//! call carries `name` and `namespace` as OpenAI writes it.
//!
//! A flat name is the namespace and the name joined (`mcp__fs__` + `read` → `mcp__fs__read`;
//! `__` between them when the namespace does not end in `_` or `-`), with characters outside
//! `[A-Za-z0-9_-]` replaced and the length kept within 64, made unique among all the tools.

use serde_json::Value;

/// The flattened names of one request's namespaced tools.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ToolNames {
    /// (flat name, namespace, name within it).
    entries: Vec<(String, String, String)>,
}

impl ToolNames {
    /// The namespace and name a flat name stands for.
    pub fn original(&self, flat: &str) -> Option<(&str, &str)> {
        self.entries
            .iter()
            .find(|(f, _, _)| f == flat)
            .map(|(_, ns, n)| (ns.as_str(), n.as_str()))
    }

    /// The flat name of `name` in `namespace` (a call in the history). A namespace this request
    /// did not declare gets the same joining rule.
    pub fn flat(&self, namespace: &str, name: &str) -> String {
        self.entries
            .iter()
            .find(|(_, ns, n)| ns == namespace && n == name)
            .map_or_else(|| join(namespace, name), |(f, _, _)| f.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names a namespaced function in this request, unique among `taken` (the plain tools'
    /// names and the flat names so far).
    pub(super) fn add(&mut self, namespace: &str, name: &str, taken: &[&str]) -> String {
        let base = join(namespace, name);
        let mut flat = base.clone();
        let mut n = 2;
        while taken.contains(&flat.as_str()) || self.entries.iter().any(|(f, _, _)| *f == flat) {
            let suffix = format!("_{n}");
            flat = format!("{}{suffix}", cut(&base, 64 - suffix.len()));
            n += 1;
        }
        self.entries
            .push((flat.clone(), namespace.to_string(), name.to_string()));
        flat
    }
}

/// The plain function names a request declares (they keep their names).
pub(super) fn plain_names(tools: &[Value]) -> Vec<&str> {
    tools
        .iter()
        .filter(|t| t["type"] == "function")
        .filter_map(|t| t["name"].as_str())
        .collect()
}

fn join(namespace: &str, name: &str) -> String {
    let sep = if namespace.ends_with(['_', '-']) || namespace.is_empty() {
        ""
    } else {
        "__"
    };
    let joined: String = format!("{namespace}{sep}{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cut(&joined, 64).to_string()
}

/// The first `max` bytes (names are ASCII by now).
fn cut(s: &str, max: usize) -> &str {
    &s[..s.len().min(max)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_stay_unique_and_map_back() {
        let mut t = ToolNames::default();
        assert_eq!(t.add("mcp__fs__", "read", &[]), "mcp__fs__read");
        assert_eq!(t.add("github", "read", &[]), "github__read");
        // A plain tool already has the joined name: the namespaced one gets a suffix.
        assert_eq!(t.add("a_", "b", &["a_b"]), "a_b_2");
        assert_eq!(t.original("a_b_2"), Some(("a_", "b")));
        assert_eq!(t.original("mcp__fs__read"), Some(("mcp__fs__", "read")));
        assert_eq!(t.original("read"), None);
        assert_eq!(t.flat("github", "read"), "github__read");
        assert_eq!(t.flat("other.ns", "x"), "other_ns__x");
    }

    #[test]
    fn long_names_are_cut_to_64() {
        let mut t = ToolNames::default();
        let ns = "n".repeat(60);
        let a = t.add(&ns, "first_tool", &[]);
        let b = t.add(&ns, "first_tool_other", &[]);
        assert_eq!(a.len(), 64);
        assert!(b.len() <= 64 && a != b);
    }
}

#[cfg(test)]
#[path = "namespaces_tests.rs"]
mod reply_tests;
