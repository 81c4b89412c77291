#![no_main]
// The same entry function tests/it/fuzz_corpus.rs replays on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| event_notify::fuzz::import(data));
