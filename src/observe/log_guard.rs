//! The process's error log, guarded. Other crates (Pingora, h2, rustls, redis) are kept to INFO
//! and above whatever `TOLLGATE_LOG` asks, because their debug and trace output dumps request
//! and response heads, credentials included. Every line that passes is cut where raw protocol
//! bytes begin (Pingora's `buf:` context on a malformed head) and has credential header values
//! replaced by `***`, so no log line carries a secret.

use std::borrow::Cow;

/// Installs the guarded logger: `level` from the config, `TOLLGATE_LOG` over it.
pub fn install(level: &str) {
    let inner = env_logger::Builder::new()
        .parse_filters(level)
        .parse_env("TOLLGATE_LOG")
        .build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Guard(inner))).is_ok() {
        log::set_max_level(max);
    }
}

struct Guard(env_logger::Logger);

impl log::Log for Guard {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        (ours(m.target()) || m.level() <= log::Level::Info) && self.0.enabled(m)
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let text = r.args().to_string();
        let clean = redact(&text);
        self.0.log(
            &log::Record::builder()
                .args(format_args!("{clean}"))
                .metadata(r.metadata().clone())
                .module_path(r.module_path())
                .file(r.file())
                .line(r.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush()
    }
}

fn ours(target: &str) -> bool {
    target == "tollgate" || target.starts_with("tollgate::")
}

/// Header names whose values are credentials.
const CREDENTIALS: [&str; 4] = ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// `text` cut before raw bytes (`buf:`), with credential header values masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let text = match text.find("buf:") {
        Some(i) => Cow::Owned(format!("{}buf: [not logged]", &text[..i])),
        None => Cow::Borrowed(text),
    };
    let lower = text.to_ascii_lowercase();
    if !CREDENTIALS.iter().any(|n| lower.contains(n)) {
        return text;
    }
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for name in CREDENTIALS {
        for (at, _) in lower.match_indices(name) {
            // The value: after the name and its separator (`: `, `": "`, `=`), up to the end
            // of the field (a quote, a comma, a brace, a line end).
            let mut i = at + name.len();
            while i < bytes.len() && matches!(bytes[i], b'"' | b':' | b'=' | b' ') {
                i += 1;
            }
            let end = (i..bytes.len())
                .find(|&j| matches!(bytes[j], b'"' | b',' | b'\r' | b'\n' | b'}'))
                .unwrap_or(bytes.len());
            if end > i {
                spans.push((i, end));
            }
        }
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (i, end) in spans {
        if i >= rest {
            out.push_str(&text[rest..i]);
            out.push_str("***");
            rest = end;
        }
    }
    out.push_str(&text[rest..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn raw_bytes_and_credentials_never_pass() {
        let pingora = "HTTP server fails to read:  InvalidHTTPHeader context: buf: \"GET / HTTP/1.1\\r\\nAuthorization: Bearer sk-1\" cause: x";
        let out = redact(pingora);
        assert!(
            !out.contains("sk-1") && out.ends_with("buf: [not logged]"),
            "{out}"
        );
        let headers = r#"{"authorization": "Bearer sk-2", "x-api-key": "sk-3", "host": "h"}"#;
        let out = redact(headers);
        assert!(
            !out.contains("sk-2") && !out.contains("sk-3") && out.contains("\"host\": \"h\""),
            "{out}"
        );
        assert_eq!(redact("plain line"), "plain line");
    }
}
