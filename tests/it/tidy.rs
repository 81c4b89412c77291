//! Tidy: the invariants of docs/ARCHITECTURE.md that a reader of the sources can check, checked
//! by reading the sources (in the spirit of rust-analyzer's tidy tests). Each check names the
//! file and line that breaks it.
//!
//! - the core (`src/core/`) uses nothing outside itself but std, heapless, log and thiserror
//!   (and serde where the next rule allows it);
//! - only the modules listed in [`ALLOWED`] use serde, serde_json or ureq;
//! - non-test code never calls `.unwrap()` or `.expect(`;
//! - every capacity constant (`*_CAP`, `MAX_*`) of `src/` is in a limits table of README.md,
//!   with the same value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which files may use which of the crates that must stay at the edges (a path ending in `/`
/// allows a whole folder).
const ALLOWED: &[(&str, &[&str])] = &[
    // Only the config model derives `Deserialize`.
    ("serde", &["src/core/config.rs"]),
    (
        "serde_json",
        &[
            "src/core/config.rs",
            // ctrl_tcp speaks JSON in netstrings.
            "src/baresip/",
            // The admin server's JSON API, and the import of other phones' configurations.
            "src/admin/",
            "src/import/",
            // The fuzz entry points build their fixed inputs.
            "src/fuzz.rs",
        ],
    ),
    // Only delivery knows the HTTP client (deliver.rs and its TCP transport, deliver/tcp.rs).
    ("ureq", &["src/daemon/deliver.rs", "src/daemon/deliver/"]),
];

/// What the core may use besides itself.
const CORE_MAY_USE: &[&str] = &["std", "core", "alloc", "heapless", "log", "thiserror"];

/// The external crates a path may start with (the core checks every one of them).
const EXTERNAL: &[&str] = &[
    "heapless",
    "ureq",
    "nix",
    "serde",
    "serde_json",
    "log",
    "thiserror",
    "httparse",
    "rustls",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, as (path relative to the repository, text).
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable source folder") {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let rel = path
                    .strip_prefix(repo())
                    .expect("under the repository")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read_to_string(&path).expect("source text")));
            }
        }
    }
    out.sort();
    out
}

/// The lines of `text` that are not test code and not comments, with their numbers: an item
/// after `#[cfg(test)]` (a `mod tests { .. }`, a test-only constant or struct) is left out.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]" {
            skip_item(&mut lines);
            continue;
        }
        if trimmed.starts_with("//") || trimmed.is_empty() {
            continue;
        }
        // A trailing comment (not a `//` inside a string such as "http://").
        let code = match line.find(" // ") {
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Skips the item that starts at the next line: up to its `;` or its balanced `}`.
fn skip_item<'a>(lines: &mut impl Iterator<Item = (usize, &'a str)>) {
    let mut depth = 0i32;
    let mut opened = false;
    for (_, line) in lines.by_ref() {
        let trimmed = line.trim();
        if trimmed.starts_with("//") || trimmed.starts_with("#[") {
            continue;
        }
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        if (opened && depth <= 0) || (!opened && trimmed.ends_with(';')) {
            return;
        }
    }
}

/// The crates that a line's paths start with: `use x::..`, `x::y` in an expression,
/// `#[derive(serde::..)]`, and the serde derive macros by name.
fn crates_used(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = line
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| !w.is_empty())
        .collect();
    for w in words {
        if let Some((root, _)) = w.split_once("::") {
            let root = root.trim_start_matches(':');
            if EXTERNAL.contains(&root) || root == "crate" {
                out.push(if root == "crate" {
                    w.split("::").take(2).collect::<Vec<_>>().join("::")
                } else {
                    root.to_string()
                });
            }
        } else if w == "Deserialize" || w == "Serialize" {
            out.push("serde".into());
        }
    }
    if let Some(rest) = line.trim().strip_prefix("use ") {
        let root = rest.split("::").next().unwrap_or_default().trim();
        if EXTERNAL.contains(&root) && !out.iter().any(|c| c == root) {
            out.push(root.to_string());
        }
    }
    out
}

fn allowed(krate: &str, file: &str) -> bool {
    match ALLOWED.iter().find(|(k, _)| *k == krate) {
        Some((_, places)) => places.iter().any(|p| {
            if p.ends_with('/') {
                file.starts_with(p)
            } else {
                file == *p
            }
        }),
        None => true,
    }
}

/// Every broken rule of the import invariants, as `file:line: what`.
fn import_problems(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, text) in files {
        let in_core = file.starts_with("src/core/");
        for (n, line) in code_lines(text) {
            for krate in crates_used(&line) {
                if let Some(module) = krate.strip_prefix("crate::") {
                    if in_core && module != "core" {
                        problems.push(format!("{file}:{n}: the core uses crate::{module}"));
                    }
                    continue;
                }
                if !allowed(&krate, file) {
                    problems.push(format!("{file}:{n}: {krate} is used outside its modules"));
                } else if in_core
                    && !CORE_MAY_USE.contains(&krate.as_str())
                    && !ALLOWED.iter().any(|(k, _)| *k == krate)
                {
                    problems.push(format!("{file}:{n}: the core uses {krate}"));
                }
            }
        }
    }
    problems
}

fn unwrap_problems(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, text) in files {
        for (n, line) in code_lines(text) {
            if line.contains(".unwrap()") || line.contains(".expect(") {
                problems.push(format!("{file}:{n}: {}", line.trim()));
            }
        }
    }
    problems
}

/// `8 * 1024`, `8192`, `16_000` as a number; `None` for anything else.
fn eval(expr: &str) -> Option<u64> {
    expr.split('*')
        .map(|f| f.trim().replace('_', "").parse::<u64>().ok())
        .try_fold(1u64, |acc, f| Some(acc * f?))
}

/// The capacity constants of non-test code: name -> [(file:line, value)].
fn capacity_constants(files: &[(String, String)]) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut out: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for (file, text) in files {
        for (n, line) in code_lines(text) {
            let Some(at) = line.find("const ") else {
                continue;
            };
            let rest = &line[at + 6..];
            let Some((name, rest)) = rest.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if !(name.ends_with("_CAP") || name.starts_with("MAX_")) {
                continue;
            }
            let value = rest
                .split_once('=')
                .and_then(|(_, v)| eval(v.trim().trim_end_matches(';')))
                .unwrap_or_else(|| panic!("{file}:{n}: cannot read the value of {name}"));
            out.entry(name.to_string())
                .or_default()
                .push((format!("{file}:{n}"), value));
        }
    }
    out
}

/// The limits tables of README.md: every row whose first cell names constants in backticks,
/// name -> values (a row `A` / `B` with `8 KiB / 16 KiB` gives each its own).
fn readme_limits(readme: &str) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[0].is_empty() || !cells[1].starts_with('`') {
            continue;
        }
        let names: Vec<&str> = cells[1]
            .split('/')
            .map(|n| n.trim().trim_matches('`'))
            .collect();
        let values: Vec<&str> = if names.len() > 1 {
            cells[2].split(" / ").collect()
        } else {
            vec![cells[2]]
        };
        for (name, value) in names.iter().zip(values) {
            if let Some(v) = readme_value(value) {
                out.entry(name.to_string()).or_default().push(v);
            }
        }
    }
    out
}

/// The first number of a table cell, with its unit: `8 KiB request line` is 8192.
fn readme_value(cell: &str) -> Option<u64> {
    let mut words = cell.split_whitespace();
    let n: u64 = words.next()?.replace([',', '_'], "").parse().ok()?;
    Some(match words.next() {
        Some("KiB") => n * 1024,
        Some("MiB") => n * 1024 * 1024,
        _ => n,
    })
}

fn limit_problems(files: &[(String, String)], readme: &str) -> Vec<String> {
    let table = readme_limits(readme);
    let mut problems = Vec::new();
    for (name, defined) in capacity_constants(files) {
        for (at, value) in defined {
            match table.get(&name) {
                None => problems.push(format!("{at}: {name} is not in README.md's limits")),
                Some(values) if !values.contains(&value) => {
                    problems.push(format!("{at}: {name} = {value}, README.md says {values:?}"))
                }
                Some(_) => {}
            }
        }
    }
    problems
}

/// The files of `files` that are test modules of another (`#[cfg(test)] mod tests;`).
fn test_module_files(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (file, text) in files {
        let dir = match file.rsplit_once('/') {
            Some((dir, "mod.rs" | "lib.rs" | "main.rs")) => dir.to_string(),
            _ => file.trim_end_matches(".rs").to_string(),
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] != "#[cfg(test)]" {
                continue;
            }
            let decl = pair[1]
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) {
                out.push(format!("{dir}/{name}.rs"));
                out.push(format!("{dir}/{name}/mod.rs"));
            }
        }
    }
    out
}

/// The non-test sources: every file of src/ but the test modules kept in files of their own.
fn src() -> Vec<(String, String)> {
    let all = sources(&repo().join("src"));
    let tests = test_module_files(&all);
    all.into_iter()
        .filter(|(f, _)| !tests.contains(f))
        .collect()
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md")
}

#[test]
fn the_core_and_the_edges_import_only_what_they_may() {
    let problems = import_problems(&src());
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn non_test_code_never_unwraps() {
    let problems = unwrap_problems(&src());
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_capacity_is_in_the_readme_with_its_value() {
    let problems = limit_problems(&src(), &readme());
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_core_forbids_unsafe_code() {
    let core = std::fs::read_to_string(repo().join("src/core/mod.rs")).expect("src/core/mod.rs");
    assert!(core.contains("#![forbid(unsafe_code)]"));
}

/// The binary's target is `test = false` (Cargo.toml: no test harness is built for it), so
/// src/main.rs must hold no tests, and no modules that could.
#[test]
fn the_binary_holds_no_tests() {
    let main = std::fs::read_to_string(repo().join("src/main.rs")).expect("src/main.rs");
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    let bin = manifest
        .split("[[bin]]")
        .nth(1)
        .and_then(|b| b.split("\n[").next())
        .expect("a [[bin]] section");
    if bin.lines().any(|l| l.trim() == "test = false") {
        for (n, line) in main.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("").trim();
            assert!(
                !(code.contains("#[test]")
                    || code.contains("cfg(test)")
                    || code.starts_with("mod ")),
                "src/main.rs:{}: {line}\n  the binary's target is `test = false` in Cargo.toml: \
                 tests here would never run (put them in the library or tests/it)",
                n + 1
            );
        }
    }
}

/// The checks themselves catch what they are for (so a check that silently passes everything
/// cannot hide behind a clean tree).
#[test]
fn the_checks_catch_broken_invariants() {
    let file = |path: &str, text: &str| vec![(path.to_string(), text.to_string())];
    let bad_core = file(
        "src/core/x.rs",
        "use crate::daemon::Device;\nuse nix::unistd;\nfn f() { let _ = ureq::get(\"u\"); }\n",
    );
    assert_eq!(
        import_problems(&bad_core).len(),
        3,
        "{:?}",
        import_problems(&bad_core)
    );
    let serde_elsewhere = file("src/daemon/x.rs", "#[derive(Deserialize)]\nstruct A;\n");
    assert_eq!(import_problems(&serde_elsewhere).len(), 1);
    let fine = file(
        "src/core/x.rs",
        "use crate::core::var::Var;\nuse heapless::Vec;\n// ureq::get in a comment\n\
         #[cfg(test)]\nmod tests {\n    use nix::unistd;\n}\n",
    );
    assert_eq!(import_problems(&fine), Vec::<String>::new());
    let unwraps = file(
        "src/x.rs",
        "fn f() { a.unwrap(); b.expect(\"x\"); c.unwrap_or(1); }\n#[cfg(test)]\nmod tests {\n    \
         fn g() { a.unwrap(); }\n}\n",
    );
    assert_eq!(unwrap_problems(&unwraps).len(), 1);
    let with_test_file = vec![
        (
            "src/a/mod.rs".to_string(),
            "#[cfg(test)]\nmod tests;\n".to_string(),
        ),
        (
            "src/b.rs".to_string(),
            "#[cfg(test)]\nmod tests;\n".to_string(),
        ),
    ];
    assert_eq!(
        test_module_files(&with_test_file),
        [
            "src/a/tests.rs",
            "src/a/tests/mod.rs",
            "src/b/tests.rs",
            "src/b/tests/mod.rs"
        ]
    );
    let caps = file(
        "src/x.rs",
        "pub const A_CAP: usize = 8 * 1024;\npub const MAX_B: usize = 5;\n\
         #[cfg(test)]\npub const MAX_B: usize = 2;\n",
    );
    let readme = "| `A_CAP` | 8 KiB of a | x |\n| `MAX_B` | 6 bees | x |\n";
    assert_eq!(limit_problems(&caps, readme).len(), 1, "MAX_B differs");
    assert_eq!(limit_problems(&caps, "").len(), 2, "both missing");
}
