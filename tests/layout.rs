//! The module list is the data flow (issue 15): each top-level module of `src/` names, through
//! `crate::`, only modules listed above it in `src/lib.rs`. That rules out import cycles and
//! imports against the flow; the stand-in (`sandbox`) and test code are left out. No file under
//! `src/` or `tests/` passes 600 lines, so that a file keeps to one stage or one topic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The `pub mod` names of `src/lib.rs`, in order.
fn module_order(src: &Path) -> Vec<String> {
    std::fs::read_to_string(src.join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect()
}

/// The top-level modules that `text` names as `crate::x` (also inside `crate::{x, y}`).
fn named_modules(text: &str, modules: &[String]) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect(),
            None => vec![rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default()],
        };
        found.extend(
            names
                .into_iter()
                .filter(|n| modules.iter().any(|m| m == n))
                .map(str::to_owned),
        );
    }
    found
}

#[test]
fn every_module_imports_only_modules_listed_above_it_in_lib_rs() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let order = module_order(&src);
    let mut against = Vec::new();
    for path in rust_files(&src) {
        let relative = path.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(position) = order.iter().position(|m| *m == top) else {
            continue; // lib.rs, main.rs
        };
        if top == "sandbox" || path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
        for module in named_modules(code, &order) {
            let theirs = order.iter().position(|m| *m == module).unwrap();
            if theirs > position {
                against.push(format!("{} -> {module}", relative.display()));
            }
        }
    }
    assert!(
        against.is_empty(),
        "imports of modules listed later in src/lib.rs: {against:#?}"
    );
}

/// A file past 600 lines is split by topic, the tests' files as the program's: a test module
/// becomes a directory of topics with its shared helpers in `mod.rs`.
#[test]
fn no_file_under_src_or_tests_passes_600_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let long: Vec<String> = ["src", "tests"]
        .iter()
        .flat_map(|dir| rust_files(&root.join(dir)))
        .filter_map(|path| {
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            (lines > 600).then(|| format!("{}: {lines}", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

/// The `….md` paths that `text` names (letters, digits, `_`, `-`, `/` and `.` before `.md`).
fn cited_markdown(text: &str) -> Vec<String> {
    let mut cited = Vec::new();
    for (i, _) in text.match_indices(".md") {
        let start = text[..i]
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_alphanumeric() || "_-/.".contains(c)))
            .map_or(0, |(p, c)| p + c.len_utf8());
        let name = &text[start..i + ".md".len()];
        if start < i && !name.starts_with('.') {
            cited.push(name.to_owned());
        }
    }
    cited
}

/// The repository stands alone (issue 26): every Markdown file a source file cites is in it,
/// named from the repository's root (`docs/meta-capi.md`), never a file beside the checkout.
#[test]
fn every_markdown_file_a_source_file_cites_is_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for dir in ["src", "tests", "benches"] {
        for path in rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&path).unwrap();
            for name in cited_markdown(&text) {
                if name.starts_with("../") || !root.join(&name).exists() {
                    missing.push(format!("{}: {name}", path.display()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "cited but not in the repository: {missing:#?}"
    );
}
