//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same entry functions
//! the cargo-fuzz targets call (`event_notify::fuzz`), on stable Rust: what fuzzing found once
//! stays fixed without nightly. `make fuzz` grows the corpus.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{target}: {} panics", path.display());
        n += 1;
    }
    assert!(n > 0, "{target}: empty corpus in {}", dir.display());
}

#[test]
fn wire_line_corpus() {
    replay("wire_line", event_notify::fuzz::wire_line);
}

#[test]
fn config_corpus() {
    replay("config", event_notify::fuzz::config);
}

#[test]
fn template_corpus() {
    replay("template", event_notify::fuzz::template);
}

#[test]
fn netstring_corpus() {
    replay("netstring", event_notify::fuzz::netstring);
}

#[test]
fn http_head_corpus() {
    replay("http_head", event_notify::fuzz::http_head);
}

#[test]
fn http_response_corpus() {
    replay("http_response", event_notify::fuzz::http_response);
}

#[cfg(feature = "import")]
#[test]
fn import_corpus() {
    replay("import", event_notify::fuzz::import);
}
