//! include/event_notify.h is hand-written (for the firmware engineer who reads it); this test
//! keeps it in step with src/ffi/ and with what the built libraries export:
//!
//! - the prototypes in the header = the `#[no_mangle] extern "C"` functions of src/ffi/, with
//!   the same C types (Rust types translated: `*const c_char` = `const char *`, ...);
//! - `en_counters` has the same fields, in the same order, with the same types; `en_log_fn` the
//!   same parameters;
//! - every constant (result codes, log levels, `EN_ABI_VERSION`) has the value of
//!   `event_notify::ffi::constants()`;
//! - the header compiles as strict C99 and as C++, and a C program built with it sees the struct's
//!   size and offsets and the constants' values that Rust has, and takes the address of each
//!   function through a pointer of the Rust signature's type (a mismatch does not compile);
//! - `nm` on libevent_notify.a (and .so) lists exactly the header's functions.
//!
//! The checker itself is tested on altered copies of the header (`altered_headers_are_caught`).

// Where no C toolchain for the target is set up (musl, aarch64), only the text checks are built.
#![cfg_attr(
    not(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "arm"))),
    allow(dead_code, unused_imports)
)]

use crate::support;

use event_notify::ffi;
use std::collections::BTreeMap;
use std::process::Command;

/// A C or Rust function signature in canonical C spelling: (return type, parameter types).
type Sig = (String, Vec<String>);

fn header_text() -> String {
    std::fs::read_to_string(support::repo().join("include/event_notify.h")).expect("header")
}

/// The C API's Rust side: every file of src/ffi/, one after the other.
fn ffi_source() -> String {
    let dir = support::repo().join("src/ffi");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("src/ffi/")
        .map(|e| e.expect("src/ffi/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("src/ffi/*.rs"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// C side

fn strip_c_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                match rest[b + 2..].find("*/") {
                    Some(e) => rest = &rest[b + 2 + e + 2..],
                    None => return out,
                }
                out.push(' ');
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |e| &rest[l + e..]);
            }
            (None, None) => {
                out.push_str(rest);
                return out;
            }
            (Some(_), None) => unreachable!(),
        }
    }
}

fn c_tokens(s: &str) -> Vec<String> {
    s.replace('*', " * ")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn is_ident(t: &str) -> bool {
    t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && t != "const"
}

/// Canonical spelling of a C type: single spaces, `*` apart, a leading `const` after its type.
fn canonical(mut tokens: Vec<String>) -> String {
    if tokens.len() >= 2 && tokens[0] == "const" {
        tokens.swap(0, 1);
    }
    tokens.join(" ")
}

/// A C parameter declaration's type (its name dropped).
fn c_param_type(p: &str) -> String {
    let mut t = c_tokens(p);
    if t.len() >= 2 && t.last().is_some_and(|l| is_ident(l)) {
        t.pop();
    }
    canonical(t)
}

fn c_params(list: &str) -> Vec<String> {
    let list = list.trim();
    if list == "void" || list.is_empty() {
        return Vec::new();
    }
    list.split(',').map(c_param_type).collect()
}

/// What the header declares.
#[derive(Debug, Default)]
struct Header {
    functions: BTreeMap<String, Sig>,
    /// `en_counters` fields: (name, canonical type).
    fields: Vec<(String, String)>,
    log_fn: Option<Sig>,
    /// Enum and `#define` constants, with the enum each belongs to ("" for a define).
    constants: Vec<(String, String, i64)>,
}

fn parse_header(text: &str) -> Result<Header, String> {
    let text = strip_c_comments(text);
    let mut h = Header::default();
    let mut body = String::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(def) = l.strip_prefix("#define ") {
            let mut w = def.split_whitespace();
            if let (Some(name), Some(value)) = (w.next(), w.next()) {
                if let Ok(v) = value.parse::<i64>() {
                    h.constants.push((name.to_string(), String::new(), v));
                }
            }
            continue;
        }
        if l.starts_with('#') || l == "extern \"C\" {" || l == "}" {
            continue;
        }
        body.push_str(l);
        body.push(' ');
    }
    // Blocks: enums and the struct, removed from the body once read.
    while let Some(start) = body.find("enum ") {
        let open = body[start..].find('{').ok_or("enum without {")? + start;
        let close = body[open..].find('}').ok_or("enum without }")? + open;
        let end = body[close..].find(';').ok_or("enum without ;")? + close;
        let name = body[start + 5..open].trim().to_string();
        for item in body[open + 1..close].split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (k, v) = item
                .split_once('=')
                .ok_or(format!("enum {name}: {item} has no value"))?;
            let v: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("enum {name}: {item}: value is not a number"))?;
            h.constants.push((k.trim().to_string(), name.clone(), v));
        }
        body.replace_range(start..=end, " ");
    }
    if let Some(start) = body.find("typedef struct en_counters {") {
        let open = start + body[start..].find('{').unwrap_or(0);
        let close = body[open..].find('}').ok_or("struct without }")? + open;
        let end = body[close..].find(';').ok_or("struct without ;")? + close;
        if body[close + 1..end].trim() != "en_counters" {
            return Err("typedef struct en_counters { ... } must end with en_counters;".into());
        }
        for f in body[open + 1..close].split(';') {
            let mut t = c_tokens(f);
            if t.is_empty() {
                continue;
            }
            let name = t
                .pop()
                .filter(|n| is_ident(n))
                .ok_or("field without name")?;
            h.fields.push((name, canonical(t)));
        }
        body.replace_range(start..=end, " ");
    }
    for decl in body.split(';') {
        let decl = decl.trim();
        if decl.is_empty() || decl == "typedef struct en_engine en_engine" {
            continue;
        }
        let open = decl
            .find('(')
            .ok_or(format!("unexpected declaration: {decl}"))?;
        if let Some(td) = decl.strip_prefix("typedef ") {
            // typedef RET (*NAME)(PARAMS)
            let (ret, rest) = td
                .split_once("(*")
                .ok_or(format!("unexpected typedef: {decl}"))?;
            let (name, params) = rest
                .split_once(")(")
                .ok_or(format!("unexpected typedef: {decl}"))?;
            let params = params.strip_suffix(')').ok_or("typedef without )")?;
            if name.trim() != "en_log_fn" {
                return Err(format!("unexpected typedef {name}"));
            }
            h.log_fn = Some((canonical(c_tokens(ret)), c_params(params)));
            continue;
        }
        let mut head = c_tokens(&decl[..open]);
        let name = head.pop().ok_or(format!("no name: {decl}"))?;
        let params = decl[open + 1..]
            .strip_suffix(')')
            .ok_or(format!("no ): {decl}"))?;
        let sig = (canonical(head), c_params(params));
        if h.functions.insert(name.clone(), sig).is_some() {
            return Err(format!("{name} is declared twice"));
        }
    }
    Ok(h)
}

// ---------------------------------------------------------------------------------------------
// Rust side

/// The C spelling (canonical) of a Rust FFI type.
fn c_of(rust: &str) -> Result<String, String> {
    let t = rust.trim();
    if let Some(inner) = t.strip_prefix("*const ") {
        return Ok(format!("{} const *", c_of(inner)?));
    }
    if let Some(inner) = t.strip_prefix("*mut ") {
        return Ok(format!("{} *", c_of(inner)?));
    }
    Ok(match t {
        "c_char" => "char",
        "c_int" => "int",
        "c_uint" => "unsigned",
        "c_void" | "()" => "void",
        "usize" => "size_t",
        "u64" => "uint64_t",
        "u32" => "uint32_t",
        "en_engine" | "en_counters" | "en_log_fn" => t,
        other => return Err(format!("no C spelling known for the Rust type `{other}`")),
    }
    .to_string())
}

/// Splits at commas outside brackets.
fn top_level_split(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The text between the parenthesis at `open` and its match.
fn parenthesised(s: &str, open: usize) -> Option<(&str, usize)> {
    let mut depth = 0;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[open + 1..open + i], open + i));
                }
            }
            _ => {}
        }
    }
    None
}

fn rust_sig(params: &str, ret: Option<&str>, named: bool) -> Result<Sig, String> {
    let mut ps = Vec::new();
    for p in top_level_split(params) {
        let ty = if named {
            p.split_once(':').ok_or(format!("parameter `{p}`"))?.1
        } else {
            p
        };
        ps.push(c_of(ty)?);
    }
    Ok((c_of(ret.unwrap_or("()"))?, ps))
}

#[derive(Debug, Default)]
struct RustSide {
    functions: BTreeMap<String, Sig>,
    fields: Vec<(String, String)>,
    log_fn: Option<Sig>,
}

fn parse_rust(src: &str) -> Result<RustSide, String> {
    let mut r = RustSide::default();
    let mut rest = src;
    while let Some(at) = rest.find("#[no_mangle]") {
        rest = &rest[at + "#[no_mangle]".len()..];
        let fn_at = rest.find("fn ").ok_or("#[no_mangle] without fn")?;
        let prefix = rest[..fn_at]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !(prefix == "pub extern \"C\"" || prefix == "pub unsafe extern \"C\"") {
            return Err(format!(
                "#[no_mangle] item is not `pub extern \"C\"`: {prefix}"
            ));
        }
        let open = rest[fn_at..].find('(').ok_or("fn without (")? + fn_at;
        let name = rest[fn_at + 3..open].trim().to_string();
        let (params, close) = parenthesised(rest, open).ok_or("fn without )")?;
        let brace = rest[close..].find('{').ok_or("fn without body")? + close;
        let ret = rest[close + 1..brace]
            .trim()
            .strip_prefix("->")
            .map(str::trim);
        let sig = rust_sig(params, ret, true).map_err(|e| format!("{name}: {e}"))?;
        r.functions.insert(name, sig);
        rest = &rest[brace..];
    }
    let s = src
        .find("pub struct en_counters {")
        .ok_or("no `pub struct en_counters {`")?;
    let body = &src[s..];
    let body = &body[body.find('{').unwrap_or(0) + 1..body.find('}').ok_or("struct without }")?];
    for f in body.split(',') {
        let f = f.trim();
        if f.is_empty() {
            continue;
        }
        let f = f
            .strip_prefix("pub ")
            .ok_or(format!("field `{f}` is not pub"))?;
        let (name, ty) = f.split_once(':').ok_or(format!("field `{f}`"))?;
        r.fields.push((name.trim().to_string(), c_of(ty)?));
    }
    let alias = "pub type en_log_fn = Option<unsafe extern \"C\" fn(";
    let a = src.find(alias).ok_or("no en_log_fn alias")? + alias.len() - 1;
    let (params, close) = parenthesised(src, a).ok_or("en_log_fn without )")?;
    let tail = &src[close + 1..];
    let ret = tail[..tail.find('>').ok_or("en_log_fn without >")?]
        .trim()
        .strip_prefix("->")
        .map(str::trim);
    r.log_fn = Some(rust_sig(params, ret, false)?);
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Comparison

/// Every difference between a header and the Rust side (empty: in step).
fn differences(h: &Header, r: &RustSide, constants: &[(&str, i64)]) -> Vec<String> {
    let mut d = Vec::new();
    for (name, sig) in &r.functions {
        match h.functions.get(name) {
            None => d.push(format!(
                "{name}: exported by src/ffi/, not declared in the header"
            )),
            Some(hs) if hs != sig => d.push(format!(
                "{name}: header has {} {name}({}), Rust has {} {name}({})",
                hs.0,
                hs.1.join(", "),
                sig.0,
                sig.1.join(", ")
            )),
            Some(_) => {}
        }
    }
    for name in h.functions.keys() {
        if !r.functions.contains_key(name) {
            d.push(format!(
                "{name}: declared in the header, not exported by src/ffi/"
            ));
        }
    }
    if h.fields != r.fields {
        d.push(format!(
            "en_counters: header fields {:?}, Rust fields {:?}",
            h.fields, r.fields
        ));
    }
    if h.log_fn != r.log_fn {
        d.push(format!(
            "en_log_fn: header {:?}, Rust {:?}",
            h.log_fn, r.log_fn
        ));
    }
    let mut hc: Vec<(String, i64)> = h
        .constants
        .iter()
        .map(|(n, _, v)| (n.clone(), *v))
        .collect();
    let mut rc: Vec<(String, i64)> = constants.iter().map(|&(n, v)| (n.to_string(), v)).collect();
    hc.sort();
    rc.sort();
    if hc != rc {
        d.push(format!("constants: header {hc:?}, Rust {rc:?}"));
    }
    // The result codes are one enum, in the order of ffi::CODES.
    let codes: Vec<&str> = h
        .constants
        .iter()
        .filter(|(_, e, _)| e == "en_error")
        .map(|(n, _, _)| n.as_str())
        .collect();
    let want: Vec<&str> = ffi::CODES.iter().map(|&(_, n, _)| n).collect();
    if codes != want {
        d.push(format!("enum en_error: header {codes:?}, Rust {want:?}"));
    }
    d
}

fn rust_side() -> RustSide {
    parse_rust(&ffi_source()).unwrap_or_else(|e| panic!("src/ffi/: {e}"))
}

#[test]
fn header_matches_the_rust_side() {
    let h = parse_header(&header_text()).unwrap_or_else(|e| panic!("event_notify.h: {e}"));
    let r = rust_side();
    assert!(r.functions.len() >= 10, "{:?}", r.functions.keys());
    let d = differences(&h, &r, &ffi::constants());
    assert!(
        d.is_empty(),
        "include/event_notify.h differs from src/ffi/:\n{}",
        d.join("\n")
    );
}

#[test]
fn altered_headers_are_caught() {
    let text = header_text();
    let r = rust_side();
    let c = ffi::constants();
    let alter = |from: &str, to: &str| -> Vec<String> {
        assert!(
            text.contains(from),
            "the header no longer contains {from:?}"
        );
        match parse_header(&text.replacen(from, to, 1)) {
            Ok(h) => differences(&h, &r, &c),
            Err(e) => vec![e],
        }
    };
    // A parameter's type, a missing function, a return type, a constant, a field, the callback.
    for (from, to) in [
        (
            "const char *const *values, size_t n);\n\n/* Reports a direct",
            "const char *const *values, int n);\n\n/* Reports a direct",
        ),
        ("int en_reload(en_engine *e);", ""),
        ("const char *en_version(void);", "char *en_version(void);"),
        ("EN_E_STOPPED = -13,", "EN_E_STOPPED = -31,"),
        ("#define EN_ABI_VERSION 1", "#define EN_ABI_VERSION 2"),
        ("    uint64_t dropped;", "    uint32_t dropped;"),
        ("    uint64_t pending;", ""),
        (
            "(void *user, int level, const char *message)",
            "(void *user, const char *message)",
        ),
        (
            "int en_get_counters(en_engine *e, en_counters *out);",
            "int en_get_counters(en_engine *e, en_counters *out);\nint en_extra(void);",
        ),
    ] {
        assert!(
            !alter(from, to).is_empty(),
            "{from:?} -> {to:?} went unnoticed"
        );
    }
    // And the Rust side: a parameter type nobody translated is an error, not a pass.
    let src = ffi_source().replacen("flush_ms: c_uint", "flush_ms: u16", 1);
    assert!(parse_rust(&src).is_err());
    // The same codes in another order than ffi::CODES are caught too.
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("EN_E_NULL = -1,"))
        .expect("EN_E_NULL line");
    let moved = text.replacen(&format!("{line}\n"), "", 1).replacen(
        "    EN_E_RANGE = -8,",
        &format!("{line}\n    EN_E_RANGE = -8,"),
        1,
    );
    let h = parse_header(&moved).unwrap();
    assert_eq!(
        h.constants.len(),
        parse_header(&text).unwrap().constants.len()
    );
    assert!(
        !differences(&h, &r, &c).is_empty(),
        "reordered codes went unnoticed"
    );
}

/// A C program, generated from the Rust side, built with the header and the static library:
/// takes each function's address through a pointer of the Rust signature's type (-Werror: a
/// mismatch does not compile), prints the struct layout and the constants' values.
#[test]
#[cfg(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "arm")))]
fn a_c_program_sees_the_rust_layout_and_values() {
    let tc = support::native();
    let r = rust_side();
    let dir = std::env::temp_dir().join(format!("en-ffi-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c =
        String::from("#include \"event_notify.h\"\n#include <stdio.h>\n#include <stddef.h>\n\n");
    for (name, (ret, params)) in &r.functions {
        let params = if params.is_empty() {
            "void".to_string()
        } else {
            params.join(", ")
        };
        c.push_str(&format!("static {ret} (*fp_{name})({params}) = {name};\n"));
    }
    c.push_str("\nint main(void)\n{\n");
    for name in r.functions.keys() {
        c.push_str(&format!(
            "    printf(\"fn {name} %d\\n\", fp_{name} != NULL);\n"
        ));
    }
    c.push_str("    printf(\"size %u\\n\", (unsigned)sizeof(en_counters));\n");
    for (f, _) in &r.fields {
        c.push_str(&format!(
            "    printf(\"offset {f} %u\\n\", (unsigned)offsetof(en_counters, {f}));\n"
        ));
    }
    for (name, _) in ffi::constants() {
        c.push_str(&format!(
            "    printf(\"const {name} %ld\\n\", (long){name});\n"
        ));
    }
    c.push_str("    return 0;\n}\n");
    let src = dir.join("probe.c");
    std::fs::write(&src, &c).unwrap();
    let exe = dir.join("probe");
    support::build_c(&tc, &[&src], &support::own_staticlib(), &exe);
    let o = support::command(&tc, &exe).output().expect("run the probe");
    assert!(
        o.status.success(),
        "probe: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = String::from_utf8_lossy(&o.stdout).into_owned();

    let mut want = String::new();
    for name in r.functions.keys() {
        want.push_str(&format!("fn {name} 1\n"));
    }
    want.push_str(&format!("size {}\n", size_of::<ffi::en_counters>()));
    // repr(C) layout from the Rust field types.
    let mut offset = 0usize;
    for (f, ty) in &r.fields {
        let size = match ty.as_str() {
            "uint64_t" => 8,
            "uint32_t" => 4,
            other => panic!("no size known for {other}"),
        };
        offset = offset.div_ceil(size) * size;
        want.push_str(&format!("offset {f} {offset}\n"));
        offset += size;
    }
    for (name, v) in ffi::constants() {
        want.push_str(&format!("const {name} {v}\n"));
    }
    assert_eq!(got, want, "generated probe:\n{c}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "arm")))]
fn the_header_is_strict_c99_and_cpp() {
    let tc = support::native();
    let header = support::repo().join("include/event_notify.h");
    for (compiler, lang, std) in [(tc.cc, "c", "-std=c99"), ("c++", "c++", "-std=c++11")] {
        if lang == "c++" && cfg!(target_arch = "arm") {
            continue; // the cross toolchain has no C++ compiler installed; the host one checks it
        }
        let o = Command::new(compiler)
            .args([
                "-fsyntax-only",
                "-x",
                lang,
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
            ])
            .arg(&header)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
        assert!(
            o.status.success(),
            "{compiler} -x {lang}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
#[cfg(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "arm")))]
fn the_libraries_export_exactly_the_header_functions() {
    let tc = support::native();
    let h = parse_header(&header_text()).unwrap();
    let declared: Vec<String> = h.functions.keys().cloned().collect();
    let exported = support::exported_en_functions(tc.nm, &support::own_staticlib(), false);
    assert_eq!(exported, declared, "libevent_notify.a");
    // The shared library exists where the target can make one (not with +crt-static).
    if !cfg!(target_feature = "crt-static") {
        let exported = support::exported_en_functions(tc.nm, &support::own_sharedlib(), true);
        assert_eq!(exported, declared, "libevent_notify.so");
    }
}

/// The example of docs/FIRMWARE.md (its first C block) compiles and links; run without a config
/// file, it says why and exits 1.
#[test]
#[cfg(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "arm")))]
fn the_readme_example_builds_and_runs() {
    let tc = support::native();
    let readme = std::fs::read_to_string(support::repo().join("docs/FIRMWARE.md")).unwrap();
    let start = readme.find("```c\n").expect("a ```c block") + 5;
    let len = readme[start..].find("```").expect("end of the block");
    let dir = std::env::temp_dir().join(format!("en-ffi-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("example.c");
    std::fs::write(&src, &readme[start..start + len]).unwrap();
    let exe = dir.join("example");
    support::build_c(&tc, &[&src], &support::own_staticlib(), &exe);
    let o = support::command(&tc, &exe)
        .output()
        .expect("run the example");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "event-notify: the config file cannot be read\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
