//! Dependencies point one way: every `crate::x` import in `src/` names a module on a lower
//! line of `LAYERS` than the importing module's own. Fails naming the file, the line and both
//! layers, so an upward import is seen in review instead of growing into a circle.

#[path = "common/source.rs"]
mod source;

use source::{is_test_file, production, rust_files};
use std::collections::HashMap;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Module name → layer index (0 = bottom).
fn layers() -> HashMap<String, usize> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("LAYERS")).expect("LAYERS");
    let mut rank = HashMap::new();
    let lines = text.lines().map(str::trim);
    for (i, line) in lines
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
    {
        for name in line.split_whitespace() {
            assert!(
                rank.insert(name.to_string(), i).is_none(),
                "{name} twice in LAYERS"
            );
        }
    }
    rank
}

/// The top-level module a file of `src/` belongs to (`main` for the binary).
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// `(line number, module)` for every `crate::x` (and `tollgate::x`) in code before the
/// file's `#[cfg(test)]` tail; comment lines are skipped.
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        for prefix in ["crate::", "tollgate::"] {
            for (at, _) in line.match_indices(prefix) {
                let before = line[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &line[at + prefix.len()..];
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'));
                let name = &rest[..end.unwrap_or(rest.len())];
                if !name.is_empty() {
                    out.push((n + 1, name.to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn imports_point_down_the_layers() {
    let rank = layers();
    let src = Path::new(ROOT).join("src");
    let files = rust_files(&src);
    let mut wrong = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        let module = module_of(rel);
        if module == "lib" || is_test_file(rel) {
            continue;
        }
        let Some(&own) = rank.get(&module) else {
            wrong.push(format!(
                "src/{}: module `{module}` is on no line of LAYERS",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for (line, dep) in imports(&text) {
            if dep == module {
                continue;
            }
            match rank.get(&dep) {
                Some(&r) if r < own => {}
                Some(&r) => wrong.push(format!(
                    "src/{}:{line}: `{module}` (layer {own}) imports `{dep}` (layer {r})",
                    rel.display()
                )),
                None => wrong.push(format!(
                    "src/{}:{line}: imports `{dep}`, which is on no line of LAYERS",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against LAYERS:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_module_is_on_a_line_and_every_line_names_a_module() {
    let rank = layers();
    let src = Path::new(ROOT).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut declared: Vec<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    declared.push("main".into());
    for m in &declared {
        assert!(rank.contains_key(m), "src/{m} is on no line of LAYERS");
    }
    for m in rank.keys() {
        assert!(
            declared.contains(m),
            "LAYERS names `{m}`, which src/lib.rs does not declare"
        );
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    let found = imports("use crate::gateway::State;\n// crate::server in a comment\nfn f() { tollgate::server::run() }\n#[cfg(test)]\nuse crate::admin;\n");
    assert_eq!(
        found,
        vec![(1, "gateway".to_string()), (3, "server".to_string())]
    );
    let rank = layers();
    assert!(rank["config"] < rank["gateway"] && rank["gateway"] < rank["server"]);
}

/// Production code (before a file's `#[cfg(test)]` tail; test files exempt) stays small:
/// no file over 500 lines, no function over 80.
#[test]
fn files_and_functions_stay_small() {
    let src = Path::new(ROOT).join("src");
    let files = rust_files(&src);
    let mut big = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        if is_test_file(rel) {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let lines = production(&text);
        let end = lines.len();
        if end > 500 {
            big.push(format!("src/{}: {end} lines", rel.display()));
        }
        for (name, at, len) in long_functions(&lines, 80) {
            big.push(format!(
                "src/{}:{at}: fn {name} is {len} lines",
                rel.display()
            ));
        }
    }
    assert!(big.is_empty(), "over the size limits:\n{}", big.join("\n"));
}

/// Functions longer than `max` lines: from the `fn` line to the closing brace at its indent.
fn long_functions(lines: &[&str], max: usize) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = line.len() - code.len();
        let Some(at) = code.find("fn ") else { continue };
        let head = &code[..at];
        let words = [
            "pub ",
            "pub(crate) ",
            "pub(super) ",
            "async ",
            "const ",
            "unsafe ",
        ];
        if !head.split_inclusive(' ').all(|w| words.contains(&w)) || code.ends_with([';', '}']) {
            continue;
        }
        let name: String = code[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = (i + 1..lines.len()).find(|&j| {
            let l = lines[j];
            l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}')
        });
        if let Some(j) = close {
            if j - i + 1 > max {
                out.push((name, i + 1, j - i + 1));
            }
        }
    }
    out
}

#[test]
fn the_size_check_sees_a_long_function() {
    let mut lines = vec!["pub(crate) async fn long() {"];
    lines.extend(std::iter::repeat_n("    step();", 80));
    lines.push("}");
    lines.push("fn short() {}");
    assert_eq!(
        long_functions(&lines, 80),
        vec![("long".to_string(), 1, 82)]
    );
}
