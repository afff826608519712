//! `include`: a main file names other files or directories (`conf.d/`: every `*.toml` in it,
//! sorted) whose tables are composed into it, so per-environment settings and secrets live
//! apart from shared routes. Composition is textual: each included file is appended after the
//! main one, so its `[[backends]]`, `[[routes]]`, ... join the main file's arrays and a table
//! defined twice (`[server]` in two files) is TOML's own duplicate-key error. Lines of the
//! composed text are mapped back to their file for every error.

use super::ConfigError;
use std::path::{Path, PathBuf};

pub(super) struct Composed {
    pub text: String,
    /// (first line in `text`, file): the part of `text` each file fills, in order.
    parts: Vec<(usize, String)>,
}

impl Composed {
    /// The file and the line in it of line `line` of the composed text.
    pub fn locate(&self, line: usize) -> (&str, usize) {
        let (first, file) = self
            .parts
            .iter()
            .rev()
            .find(|(first, _)| *first <= line)
            .map_or((1, ""), |(f, n)| (*f, n.as_str()));
        (file, line - first + 1)
    }

    pub fn is_single(&self) -> bool {
        self.parts.len() == 1
    }
}

/// The main file's text with its includes appended.
pub(super) fn compose(main: &Path, text: &str) -> Result<Composed, ConfigError> {
    let mut out = Composed {
        text: text.to_string(),
        parts: vec![(1, main.display().to_string())],
    };
    let dir = main.parent().unwrap_or(Path::new("."));
    for f in included(text, dir)? {
        let body = std::fs::read_to_string(&f).map_err(|e| err(format!("{}: {e}", f.display())))?;
        if let Some(bad) = first_bare_key(&body) {
            return Err(err(format!(
                "{}: line {bad}: an included file must start with a [table] or [[array]] header",
                f.display()
            )));
        }
        if !out.text.ends_with('\n') {
            out.text.push('\n');
        }
        let first = out.text.lines().count() + 1;
        out.parts.push((first, f.display().to_string()));
        out.text.push_str(&body);
    }
    Ok(out)
}

fn err(message: String) -> ConfigError {
    ConfigError {
        file: None,
        path: "include".into(),
        line: None,
        message,
    }
}

/// The files named by the main file's top-level `include`, relative to its directory;
/// a directory stands for its `*.toml` files, sorted by name.
fn included(text: &str, dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let doc: toml::Table = match toml::from_str(text) {
        Ok(d) => d,
        // The full parse reports it with its line.
        Err(_) => return Ok(Vec::new()),
    };
    let Some(list) = doc.get("include") else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = match list {
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => return Err(err("must be a path or a list of paths".into())),
    };
    let mut files = Vec::new();
    for name in names {
        let p = dir.join(name);
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| err(format!("{}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        } else if p.is_file() {
            files.push(p);
        } else {
            return Err(err(format!("{}: no such file or directory", p.display())));
        }
    }
    Ok(files)
}

/// The line of a key outside any table (it would land in the previous file's last table).
fn first_bare_key(body: &str) -> Option<usize> {
    for (i, line) in body.lines().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        return (!t.starts_with('[')).then_some(i + 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tollgate-include-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = std::fs::remove_dir_all(&d);
        for (name, body) in files {
            let p = d.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        d
    }

    #[test]
    fn a_directory_is_its_toml_files_in_order_and_lines_map_back() {
        let d = dir(&[
            (
                "main.toml",
                "include = [\"conf.d\"]\n[server]\nthreads = 1\n",
            ),
            ("conf.d/20-b.toml", "[[backends]]\nname = \"b\"\n"),
            ("conf.d/10-a.toml", "# first\n[[backends]]\nname = \"a\"\n"),
            ("conf.d/notes.txt", "ignored"),
        ]);
        let main = d.join("main.toml");
        let c = compose(&main, &std::fs::read_to_string(&main).unwrap()).unwrap();
        let a = c.text.find("\"a\"").unwrap();
        assert!(a < c.text.find("\"b\"").unwrap());
        let line_of_a = c.text[..a].lines().count();
        let (file, line) = c.locate(line_of_a);
        assert!(file.ends_with("10-a.toml") && line == 3, "{file}:{line}");
    }

    #[test]
    fn an_included_file_may_not_start_with_a_bare_key() {
        let d = dir(&[
            ("main.toml", "include = \"extra.toml\"\n"),
            ("extra.toml", "\nthreads = 3\n"),
        ]);
        let main = d.join("main.toml");
        let e = compose(&main, "include = \"extra.toml\"\n").err().unwrap();
        assert!(e.message.contains("line 2"), "{}", e.message);
    }
}
