//! The pure core: no I/O, no clock. Time comes in as arguments.
#![forbid(unsafe_code)]

pub mod bytes;
pub mod config;
pub mod engine;
pub mod event;
pub mod hook;
pub mod id;
pub mod outbox;
pub mod secret;
pub mod template;
pub mod tracker;
pub mod var;
pub mod wire;
