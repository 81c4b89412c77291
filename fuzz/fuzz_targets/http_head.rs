//! The server-side HTTP layer against arbitrary bytes (see `event_notify::fuzz::http_head`).
#![no_main]
// The same entry function tests/it/fuzz_corpus.rs replays on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| event_notify::fuzz::http_head(data));
