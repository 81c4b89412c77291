//! The loop sender's response parser against arbitrary bytes (see
//! `event_notify::fuzz::http_response`).
#![no_main]
// The same entry function tests/it/fuzz_corpus.rs replays on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| event_notify::fuzz::http_response(data));
