//! event-notify: phone events to HTTP requests, for desk-phone firmware.
//!
//! Read it top-down:
//! - [`core`]: the pure engine — events, variables, templates, config model, the state tracker
//!   that derives the twenty events from SIP/UI transitions, the bounded outbox and the retry
//!   schedule. No I/O, no clock: the caller passes `now` in.
//! - the daemon layer: the Unix socket, signals, config reload, HTTP delivery (the only module
//!   that knows ureq), the server-side HTTP layer ([`http`], on httparse) and the `listen`
//!   receiver on it.
//! - [`import`]: another vendor's provisioning file (Yealink, Snom, Grandstream) into a config,
//!   with a report of what does not carry over (the `import` command and the admin API).

pub mod admin;
pub mod baresip;
pub mod core;
#[cfg(feature = "listen")]
pub mod listen;
pub mod sign;
pub mod spool;

pub use crate::core::event::Event;
pub use crate::core::hook::{CallState, Kind, MediaState, Msg, RegState, TransferKind};
pub use crate::core::template::{Credentials, Encoding, Template};
pub use crate::core::var::{Var, Vars};
pub mod cli;
pub mod client;
pub mod daemon;
pub mod ffi;
#[doc(hidden)]
pub mod fuzz;
pub mod http;
#[cfg(feature = "import")]
pub mod import;
pub mod logger;
