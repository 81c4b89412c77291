//! The baresip adapter: follows a live baresip over its `ctrl_tcp` module and turns what it
//! reports into the engine's transitions ([`Msg`]).
//!
//! Two layers, like the rest of the crate:
//! - [`Decoder`] and [`Mapper`] are pure: bytes in, frames out; one ctrl_tcp JSON object in,
//!   zero or more `Msg`s (and, at times, one query to send back) out. No I/O, no clock: the
//!   caller passes `now_ms` where a timeout matters.
//! - [`run_adapter`] is the I/O loop the daemon runs in a thread of its own: connect, read
//!   netstrings, feed the mapper, hand each `Msg` to the sink, send the mapper's queries,
//!   reconnect with capped back-off when baresip goes away.
//!
//! What baresip 1.0.0 (Debian 12) gives, and what is derived (see docs/FIRMWARE.md, "Following a baresip SIP stack"):
//! - it has no `CALL_OUTGOING`: an outgoing call first shows as `CALL_LOCAL_SDP` (`offer`,
//!   direction `outgoing`) *without* its Call-ID. The mapper asks baresip `callstat` at once
//!   and announces the call with the Call-ID it reports; if that answer does not fit, the call
//!   is announced with the first event that carries its Call-ID (or with its `CALL_CLOSED`).
//! - it has no `CALL_HOLD`/`CALL_RESUME`: a hold or resume by this phone shows only as an extra
//!   `CALL_REMOTE_SDP` (`answer`) on an established call, the same for both. The mapper then asks
//!   `listcalls`, whose lines carry baresip's own `(on hold)` flag, and reports a change.
//! - a blind transfer shows only as `CALL_CLOSED` with the reason `Call transfered`, once the
//!   transfer target accepted: the mapper reports `Refer(Blind)` just before that `Call(Ended)`.
//!
//! Invariant: nothing here panics on what baresip sends; an event it does not know is counted
//! and ignored.

mod adapter;
mod mapper;
mod netstring;

pub use adapter::{run_adapter, AdapterCounts, AdapterStats};
pub use mapper::{Handled, MapStats, Mapper, Query, QueryKind};
pub use netstring::{netstring, Decoder, FrameError};

/// Largest ctrl_tcp message (the JSON inside one netstring) in bytes. baresip 1.0.0's events
/// are under 1 KiB and a `callstat` answer about 1.2 KiB; a longer netstring is skipped and
/// counted.
pub const NETSTRING_CAP: usize = 8192;
/// Longest netstring length prefix (`8192` is 4 digits; more digits than this is garbage).
pub const LEN_DIGITS_MAX: usize = 9;
/// Calls the mapper follows at once (baresip's `call_max_calls` is 4 by default).
pub const MAX_MAPPED_CALLS: usize = 8;
/// Outgoing calls seen without their Call-ID yet (between the dial and its first event with one).
pub const MAX_DIALS: usize = 4;
/// How long a query (`callstat`/`listcalls`) may go unanswered before it is given up.
pub const QUERY_TIMEOUT_MS: u64 = 3_000;
/// Reconnect back-off: first wait, doubled after each failed attempt up to the cap.
pub const BACKOFF_INITIAL_MS: u64 = 200;
pub const BACKOFF_MAX_MS: u64 = 5_000;
/// Connect timeout to ctrl_tcp, and the read timeout that paces the loop (stop flag, query
/// timeouts).
pub const CONNECT_TIMEOUT_MS: u64 = 1_000;
pub const READ_TICK_MS: u64 = 200;

/// The reason baresip 1.0.0 gives in `CALL_CLOSED` when this phone's blind transfer succeeded
/// (its spelling).
pub const REASON_TRANSFERRED: &str = "Call transfered";
