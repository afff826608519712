//! Format folders sit side by side: code in a folder of `src/formats/` imports the formats root
//! (`Delta`, `fields`, `ids`, ...), the shared folders (`pivot`, the chat-pivot toolkit;
//! `framing`; `openai`, the pivot's wire types) and its own folder, never another format's.
//! `framing` only cuts bytes into events, so it imports neither `openai` nor `pivot`; `pivot`
//! reads the chat request, so it imports only `openai` and `fields`. Fails naming the file, the
//! line and the folder imported, so a shortcut from one format into another is seen in review
//! (test code is exempt, as in `tests/layers.rs`).

#[path = "common/source.rs"]
mod source;

use source::{is_test_file, rust_files};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Folders every format may import.
const SHARED: [&str; 3] = ["openai", "pivot", "framing"];

/// The folders directly under `src/formats/`.
fn folders() -> Vec<String> {
    let dir = Path::new(ROOT).join("src/formats");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Whether code in folder `own` may import `x` (a folder, or a module or item of the root).
fn allowed(own: &str, x: &str, folders: &[String]) -> bool {
    match own {
        "pivot" => ["pivot", "openai", "fields"].contains(&x),
        "framing" => x == own || !folders.iter().any(|f| f == x),
        _ => x == own || SHARED.contains(&x) || !folders.iter().any(|f| f == x),
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The names a path continues with after `formats::`: one (`x::...`) or a group (`{x, y::z}`).
fn names_after(rest: &str) -> Vec<String> {
    let Some(group) = rest.strip_prefix('{') else {
        let end = rest.find(|c| !is_ident(c)).unwrap_or(rest.len());
        return vec![rest[..end].to_string()];
    };
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.push(group[start..i].to_string());
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(group[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.iter()
        .map(|s| s.trim().split(|c| !is_ident(c)).next().unwrap_or(""))
        .filter(|s| !s.is_empty() && *s != "self")
        .map(str::to_string)
        .collect()
}

/// The module path of a file under `src/` (`formats/anthropic/request.rs` →
/// `formats::anthropic::request`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut segs: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    segs
}

/// The code before the file's `#[cfg(test)]` tail, comment lines blanked (line numbers kept).
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if !trimmed.starts_with("//") {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `(line, name)` for every name of `formats` a file's code imports: `crate::formats::x`,
/// `formats::x`, and `super::…::x` where the `super`s climb to `formats`.
fn imports(rel: &Path, text: &str) -> Vec<(usize, String)> {
    let code = code(text);
    let here = module_path(rel);
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut out = Vec::new();
    for (at, _) in code.match_indices("formats::") {
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        for name in names_after(&code[at + "formats::".len()..]) {
            out.push((line_of(at), name));
        }
    }
    for (at, _) in code.match_indices("super::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        let mut rest = &code[at..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            rest = r;
            up += 1;
        }
        let Some(base) = here.len().checked_sub(up) else {
            continue;
        };
        let names = match base {
            1 if here[0] == "formats" => names_after(rest),
            0 => continue,
            _ if here[0] == "formats" && base >= 2 => vec![here[1].clone()],
            _ => continue,
        };
        for name in names {
            out.push((line_of(at), name));
        }
    }
    out.sort();
    out
}

#[test]
fn format_folders_import_no_other_format() {
    let src = Path::new(ROOT).join("src");
    let folders = folders();
    let mut wrong = Vec::new();
    for own in &folders {
        for path in rust_files(&src.join("formats").join(own)) {
            let rel = path.strip_prefix(&src).unwrap();
            if is_test_file(rel) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (line, x) in imports(rel, &text) {
                if !allowed(own, &x, &folders) {
                    wrong.push(format!(
                        "src/{}:{line}: `formats/{own}` imports `formats::{x}`",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports across format folders:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_a_cross_folder_import() {
    let text = "use super::types::OutPart;\n\
        use crate::formats::anthropic::request::parse;\n\
        // crate::formats::bedrock in a comment\n\
        use crate::formats::{fields::unsupported, openai::types::Tool, ids,\n    responses::x};\n\
        fn f() { super::super::bedrock::g() }\n\
        #[cfg(test)]\n\
        use crate::formats::anthropic;\n";
    let rel = Path::new("formats/gemini/messages.rs");
    let found = imports(rel, text);
    let names = |v: &[(usize, String)]| {
        v.iter()
            .map(|(n, x)| format!("{n} {x}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&found),
        [
            "1 gemini",
            "2 anthropic",
            "4 fields",
            "4 ids",
            "4 openai",
            "4 responses",
            "6 bedrock"
        ]
    );
    let folders: Vec<String> = [
        "anthropic",
        "bedrock",
        "framing",
        "gemini",
        "openai",
        "pivot",
        "responses",
    ]
    .map(String::from)
    .to_vec();
    let flagged: Vec<&str> = found
        .iter()
        .filter(|(_, x)| !allowed("gemini", x, &folders))
        .map(|(_, x)| x.as_str())
        .collect();
    assert_eq!(flagged, ["anthropic", "responses", "bedrock"]);
    assert!(!allowed("framing", "pivot", &folders) && !allowed("framing", "openai", &folders));
    assert!(allowed("pivot", "openai", &folders) && !allowed("pivot", "Delta", &folders));
    assert!(allowed("openai", "pivot", &folders) && allowed("bedrock", "framing", &folders));
}
