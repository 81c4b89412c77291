//! The pure mapper: one ctrl_tcp JSON object in, zero or more `Msg`s (and, at times, one
//! query to send back) out.

use crate::core::hook::{CallState, Kind, MediaState, Msg, RegState, TransferKind};
use crate::core::tracker::user_part;
use crate::core::var::{Value, Var, Vars};
use crate::core::wire::reason_is_elsewhere;
use core::fmt::Write as _;
use heapless::String;
use serde_json::Value as Json;

use super::*;

/// A question the mapper wants baresip to answer (a ctrl_tcp command, read-only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// `callstat`: the current call's Call-ID, for a dial seen without one.
    CallStat,
    /// `listcalls`: every call's state and `(on hold)` flag.
    ListCalls,
}

impl QueryKind {
    pub fn command(self) -> &'static str {
        match self {
            QueryKind::CallStat => "callstat",
            QueryKind::ListCalls => "listcalls",
        }
    }
}

/// One query to send: its JSON command text (with its token) is [`Query::json`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    pub kind: QueryKind,
    pub token: u32,
}

impl Query {
    /// `{"command":"listcalls","token":"en-7"}`
    pub fn json(&self) -> String<64> {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"command\":\"{}\",\"token\":\"en-{}\"}}",
            self.kind.command(),
            self.token
        );
        s
    }
}

/// What one ctrl_tcp message amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// An event that gave this many messages (0: known, but nothing to report).
    Event(usize),
    /// An answer to one of our queries, that gave this many messages.
    Answer(usize),
    /// Not an event of a type the mapper knows, or an answer nobody asked for.
    Ignored,
}

/// Counters of the mapper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapStats {
    /// Call table full: a call was reported but is not followed (no hold/transfer/derivations).
    pub call_table_full: u64,
    /// Queries given up after [`QUERY_TIMEOUT_MS`].
    pub query_timeouts: u64,
    /// `listcalls` answers that could not tell two calls to the same peer apart.
    pub ambiguous: u64,
}

#[derive(Clone, Debug)]
struct Call {
    /// The call's variables: call_id, remote, display_remote, local, active_user,
    /// active_host, calldirection.
    vars: Vars,
    /// baresip's `peeruri`, to find the call in `listcalls` lines.
    peeruri: Value,
    established: bool,
    held: bool,
}

impl Call {
    fn id(&self) -> &str {
        self.vars.get(Var::CallId)
    }
}

/// An outgoing call seen before its Call-ID.
#[derive(Clone, Debug)]
struct Dial {
    peeruri: Value,
    aor: Value,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    query: Query,
    sent_ms: u64,
}

/// The fields of one ctrl_tcp event (missing ones are empty).
struct Ev<'a> {
    kind: &'a str,
    aor: &'a str,
    direction: &'a str,
    peeruri: &'a str,
    display: &'a str,
    id: &'a str,
    param: &'a str,
}

impl<'a> Ev<'a> {
    fn from(v: &'a Json) -> Ev<'a> {
        let s = |k: &str| v.get(k).and_then(Json::as_str).unwrap_or("");
        Ev {
            kind: s("type"),
            aor: s("accountaor"),
            direction: s("direction"),
            peeruri: s("peeruri"),
            display: s("peerdisplayname"),
            id: s("id"),
            param: s("param"),
        }
    }

    fn outgoing(&self) -> bool {
        self.direction == "outgoing"
    }
}

/// `sip:1001@pbx.example:5060;transport=udp` gives `pbx.example:5060`.
fn host_part(uri: &str) -> &str {
    let rest = match uri.find('@') {
        Some(i) => &uri[i + 1..],
        None => match uri.find(':') {
            Some(i) => &uri[i + 1..],
            None => uri,
        },
    };
    let end = rest.find([';', '>', '?']).unwrap_or(rest.len());
    &rest[..end]
}

fn account_vars(vars: &mut Vars, aor: &str) {
    let user = user_part(aor);
    vars.set(Var::Local, user);
    vars.set(Var::ActiveUser, user);
    vars.set(Var::ActiveHost, host_part(aor));
}

fn value(s: &str) -> Value {
    let mut v = Value::new();
    crate::core::var::set_truncated(&mut v, s);
    v
}

/// Turns baresip 1.0.0 ctrl_tcp messages into [`Msg`]s. Plain data, no I/O.
///
/// ```
/// use event_notify::baresip::Mapper;
/// use event_notify::{CallState, Kind, Var};
/// let ev: serde_json::Value = serde_json::from_str(r#"{"event":true,"type":"CALL_INCOMING",
///   "class":"call","accountaor":"sip:1001@pbx.test","direction":"incoming",
///   "peeruri":"sip:1002@10.0.0.2","peerdisplayname":"Bob","id":"c1","param":"sip:1002@10.0.0.2"}"#).unwrap();
/// let mut m = Mapper::new();
/// let mut got = Vec::new();
/// m.input(&ev, &mut |msg| got.push(msg));
/// assert_eq!(got[0].kind, Kind::Call(CallState::Incoming));
/// assert_eq!(got[0].vars.get(Var::Remote), "1002");
/// assert_eq!(got[0].vars.get(Var::ActiveHost), "pbx.test");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Mapper {
    calls: heapless::Vec<Call, MAX_MAPPED_CALLS>,
    dials: heapless::Vec<Dial, MAX_DIALS>,
    want_callstat: bool,
    want_listcalls: bool,
    /// The next `listcalls` answer also ends the calls baresip no longer has (after a reconnect).
    reconcile: bool,
    pending: Option<Pending>,
    next_token: u32,
    pub stats: MapStats,
}

impl Mapper {
    pub fn new() -> Mapper {
        Mapper::default()
    }

    /// Calls being followed.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// A new ctrl_tcp connection: answers to queries sent on the old one will never come, and
    /// events were dropped while none was connected, so ask baresip which calls still exist.
    pub fn connected(&mut self) {
        self.pending = None;
        if !self.calls.is_empty() {
            self.want_listcalls = true;
            self.reconcile = true;
        }
        self.want_callstat = !self.dials.is_empty();
    }

    /// The query to send now, if any (one at a time). A query unanswered for
    /// [`QUERY_TIMEOUT_MS`] is given up.
    pub fn poll_query(&mut self, now_ms: u64) -> Option<Query> {
        if let Some(p) = self.pending {
            if now_ms.saturating_sub(p.sent_ms) < QUERY_TIMEOUT_MS {
                return None;
            }
            log::warn!(
                "baresip: no answer to {} in {QUERY_TIMEOUT_MS} ms",
                p.query.kind.command()
            );
            self.stats.query_timeouts += 1;
            self.pending = None;
        }
        let kind = if self.want_callstat {
            self.want_callstat = false;
            QueryKind::CallStat
        } else if self.want_listcalls {
            self.want_listcalls = false;
            QueryKind::ListCalls
        } else {
            return None;
        };
        self.next_token = self.next_token.wrapping_add(1);
        let query = Query {
            kind,
            token: self.next_token,
        };
        self.pending = Some(Pending {
            query,
            sent_ms: now_ms,
        });
        Some(query)
    }

    /// Feeds one ctrl_tcp message (an event or the answer to a query); `out` receives the
    /// messages it gives, in order.
    pub fn input(&mut self, json: &Json, out: &mut dyn FnMut(Msg)) -> Handled {
        let mut n = 0usize;
        let mut emit = |m: Msg| {
            n += 1;
            out(m)
        };
        if json.get("event").and_then(Json::as_bool) == Some(true) {
            if self.on_event(&Ev::from(json), &mut emit) {
                Handled::Event(n)
            } else {
                Handled::Ignored
            }
        } else if json.get("response").and_then(Json::as_bool) == Some(true) {
            if self.on_answer(json, &mut emit) {
                Handled::Answer(n)
            } else {
                Handled::Ignored
            }
        } else {
            Handled::Ignored
        }
    }

    /// Returns whether the event type is known.
    fn on_event(&mut self, ev: &Ev, out: &mut dyn FnMut(Msg)) -> bool {
        let reg = |state: RegState, out: &mut dyn FnMut(Msg)| {
            let mut m = Msg::new(Kind::Register(state));
            account_vars(&mut m.vars, ev.aor);
            out(m);
        };
        match ev.kind {
            "REGISTERING" => reg(RegState::Registering, out),
            "REGISTER_OK" => reg(RegState::Ok, out),
            "REGISTER_FAIL" => reg(RegState::Failed, out),
            "UNREGISTERING" => reg(RegState::Off, out),
            "CALL_INCOMING" => {
                if ev.id.is_empty() {
                    return true;
                }
                if self.find(ev.id).is_none() {
                    // Announced here, as itself (not by `follow`).
                    if let Some(i) = self.track(ev) {
                        out(self.msg(i, CallState::Incoming));
                    } else {
                        out(self.loose(ev, CallState::Incoming));
                    }
                }
            }
            "CALL_RINGING" | "CALL_PROGRESS" => {
                if let Some(i) = self.follow(ev, out) {
                    if !self.calls[i].established {
                        out(self.msg(i, CallState::Ringing));
                    }
                } else if !ev.id.is_empty() {
                    out(self.loose(ev, CallState::Ringing));
                }
            }
            "CALL_ESTABLISHED" => {
                if let Some(i) = self.follow(ev, out) {
                    if !self.calls[i].established {
                        self.calls[i].established = true;
                        out(self.msg(i, CallState::Confirmed));
                    }
                } else if !ev.id.is_empty() {
                    out(self.loose(ev, CallState::Confirmed));
                }
            }
            "CALL_LOCAL_SDP" | "CALL_REMOTE_SDP" => {
                if ev.id.is_empty() {
                    if ev.kind == "CALL_LOCAL_SDP" && ev.outgoing() && ev.param == "offer" {
                        self.dialed(ev);
                    }
                } else if let Some(i) = self.follow(ev, out) {
                    // On an established call, an SDP exchange may be a hold or a resume by
                    // this phone (1.0.0 reports no more): ask baresip for its hold flags.
                    if self.calls[i].established {
                        self.want_listcalls = true;
                    }
                }
            }
            "CALL_CLOSED" => self.closed(ev, out),
            _ => return false,
        }
        true
    }

    fn find(&self, id: &str) -> Option<usize> {
        // Compared as stored: cut to the value capacity.
        let id = value(id);
        self.calls.iter().position(|c| c.id() == id.as_str())
    }

    /// Starts following the call of this event; `None` when the table is full.
    fn track(&mut self, ev: &Ev) -> Option<usize> {
        let mut vars = Vars::new();
        vars.set(Var::CallId, ev.id);
        vars.set(Var::Remote, user_part(ev.peeruri));
        vars.set(Var::DisplayRemote, ev.display);
        account_vars(&mut vars, ev.aor);
        vars.set(
            Var::CallDirection,
            if ev.outgoing() {
                "outgoing"
            } else {
                "incoming"
            },
        );
        let call = Call {
            vars,
            peeruri: value(ev.peeruri),
            established: false,
            held: false,
        };
        if self.calls.push(call).is_err() {
            log::warn!(
                "baresip: call table full ({MAX_MAPPED_CALLS}): call {} not followed",
                ev.id
            );
            self.stats.call_table_full += 1;
            return None;
        }
        if ev.outgoing() {
            self.undial(ev.peeruri, ev.aor);
        }
        Some(self.calls.len() - 1)
    }

    /// The call of an event that carries a Call-ID; a call seen here for the first time (its
    /// dial came without Call-ID, or the adapter connected mid-call) is announced first.
    fn follow(&mut self, ev: &Ev, out: &mut dyn FnMut(Msg)) -> Option<usize> {
        if ev.id.is_empty() {
            return None;
        }
        if let Some(i) = self.find(ev.id) {
            if !ev.display.is_empty() && self.calls[i].vars.get(Var::DisplayRemote).is_empty() {
                self.calls[i].vars.set(Var::DisplayRemote, ev.display);
            }
            return Some(i);
        }
        let i = self.track(ev)?;
        let first = if ev.outgoing() {
            CallState::Calling
        } else {
            CallState::Incoming
        };
        out(self.msg(i, first));
        Some(i)
    }

    /// An outgoing call without Call-ID yet: remember it and ask baresip for the Call-ID.
    fn dialed(&mut self, ev: &Ev) {
        if self.dials.is_full() {
            self.dials.remove(0);
        }
        let _ = self.dials.push(Dial {
            peeruri: value(ev.peeruri),
            aor: value(ev.aor),
        });
        self.want_callstat = true;
    }

    /// Forgets the oldest dial to this peer from this account; returns whether there was one.
    fn undial(&mut self, peeruri: &str, aor: &str) -> bool {
        let (p, a) = (value(peeruri), value(aor));
        match self.dials.iter().position(|d| d.peeruri == p && d.aor == a) {
            Some(i) => {
                self.dials.remove(i);
                true
            }
            None => false,
        }
    }

    fn closed(&mut self, ev: &Ev, out: &mut dyn FnMut(Msg)) {
        let i = match self.find(ev.id) {
            Some(i) => Some(i),
            // A dial that ends before any event with its Call-ID (busy at once, no answer,
            // hung up while resolving): announce it, then end it.
            None if ev.outgoing()
                && !ev.id.is_empty()
                && self
                    .dials
                    .iter()
                    .any(|d| d.peeruri == value(ev.peeruri) && d.aor == value(ev.aor)) =>
            {
                self.follow(ev, out)
            }
            None => None,
        };
        let transferred = ev.param == REASON_TRANSFERRED;
        let mut end = match i {
            Some(i) => self.msg(i, CallState::Ended),
            None if ev.id.is_empty() => return,
            // Not followed (table full, or it started before we connected): report it as is;
            // the engine ignores a Call-ID it never saw announced.
            None => self.loose(ev, CallState::Ended),
        };
        end.answered_elsewhere = reason_is_elsewhere(ev.param);
        if transferred {
            let mut refer = Msg::new(Kind::Refer(TransferKind::Blind));
            refer.vars = end.vars.clone();
            out(refer);
        }
        out(end);
        if let Some(i) = i {
            self.calls.swap_remove(i);
        }
    }

    /// A message about followed call `i`, with its variables.
    fn msg(&self, i: usize, state: CallState) -> Msg {
        let mut m = Msg::new(Kind::Call(state));
        m.vars = self.calls[i].vars.clone();
        m
    }

    /// A message about a call that is not followed, with the variables of this event.
    fn loose(&self, ev: &Ev, state: CallState) -> Msg {
        let mut m = Msg::new(Kind::Call(state));
        m.vars.set(Var::CallId, ev.id);
        m.vars.set(Var::Remote, user_part(ev.peeruri));
        m.vars.set(Var::DisplayRemote, ev.display);
        account_vars(&mut m.vars, ev.aor);
        if !ev.direction.is_empty() {
            m.vars.set(Var::CallDirection, ev.direction);
        }
        m
    }

    /// Returns whether it was the answer to the pending query.
    fn on_answer(&mut self, json: &Json, out: &mut dyn FnMut(Msg)) -> bool {
        let Some(p) = self.pending else { return false };
        let mut want = String::<16>::new();
        let _ = write!(want, "en-{}", p.query.token);
        if json.get("token").and_then(Json::as_str) != Some(want.as_str()) {
            return false;
        }
        self.pending = None;
        let data = json.get("data").and_then(Json::as_str).unwrap_or("");
        let ok = json.get("ok").and_then(Json::as_bool) == Some(true);
        match p.query.kind {
            QueryKind::CallStat if ok => self.on_callstat(data, out),
            QueryKind::ListCalls if ok => self.on_listcalls(data, out),
            _ => log::warn!(
                "baresip: {} failed: {}",
                p.query.kind.command(),
                data.trim()
            ),
        }
        true
    }

    /// `callstat` describes baresip's current call. If that is a dial we are waiting for
    /// (outgoing, same peer and account, a Call-ID not yet followed), announce it now.
    fn on_callstat(&mut self, data: &str, out: &mut dyn FnMut(Msg)) {
        let mut id = "";
        let mut local = "";
        let mut peer = "";
        let mut outgoing = false;
        for line in data.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("local_uri:") {
                local = rest.trim();
            } else if let Some(rest) = line.strip_prefix("peer_uri:") {
                peer = rest.trim();
            } else if line == "direction: Outgoing" {
                outgoing = true;
            } else if let Some(i) = line
                .find(" id=")
                .or_else(|| line.starts_with("id=").then_some(0))
            {
                let rest = &line[i..].trim_start()[3..];
                id = rest.split_whitespace().next().unwrap_or("");
            }
        }
        if !outgoing || id.is_empty() || self.find(id).is_some() {
            return;
        }
        // `peer_uri:   Display <sip:..>` and `local_uri:  <sip:..>`: the URI inside <>.
        let inside = |s: &str| -> std::string::String {
            match (s.rfind('<'), s.rfind('>')) {
                (Some(a), Some(b)) if a < b => s[a + 1..b].to_owned(),
                _ => s.to_owned(),
            }
        };
        let (peer, local) = (inside(peer), inside(local));
        let Some(d) = self.dials.iter().position(|d| {
            d.peeruri.as_str() == value(&peer).as_str() && d.aor.as_str() == value(&local).as_str()
        }) else {
            return;
        };
        let dial = self.dials[d].clone();
        let ev = Ev {
            kind: "CALL_LOCAL_SDP",
            aor: &dial.aor,
            direction: "outgoing",
            peeruri: &dial.peeruri,
            display: "",
            id,
            param: "offer",
        };
        self.follow(&ev, out);
        if !self.dials.is_empty() {
            // Another dial is still waiting for its Call-ID.
            self.want_callstat = true;
        }
    }

    /// `listcalls` lines: `> [line 1]  0:00:01  ESTABLISHED  (on hold)  sip:1003@pbx.test`.
    fn on_listcalls(&mut self, data: &str, out: &mut dyn FnMut(Msg)) {
        // `--- Active calls (N) ---`, or `--- No active calls ---` when baresip has no account.
        if !data.contains("Active calls") && !data.contains("No active calls") {
            return;
        }
        let reconcile = core::mem::take(&mut self.reconcile);
        let mut i = 0;
        while i < self.calls.len() {
            let mut seen = 0usize;
            let mut held = 0usize;
            let mut established = 0usize;
            for line in data.lines().filter(|l| l.contains("[line ")) {
                if line.split_whitespace().last().map(value).as_ref()
                    != Some(&self.calls[i].peeruri)
                {
                    continue;
                }
                seen += 1;
                held += usize::from(line.contains("(on hold)"));
                established += usize::from(line.contains(" ESTABLISHED "));
            }
            if seen == 0 {
                if reconcile {
                    // Ended while no one was connected to hear it.
                    log::info!("baresip: call {} is gone", self.calls[i].id());
                    out(self.msg(i, CallState::Ended));
                    self.calls.swap_remove(i);
                    continue;
                }
            } else if held != 0 && held != seen || established != 0 && established != seen {
                self.stats.ambiguous += 1;
            } else {
                if reconcile && established == seen && !self.calls[i].established {
                    self.calls[i].established = true;
                    out(self.msg(i, CallState::Confirmed));
                }
                let now_held = held == seen;
                if self.calls[i].established && now_held != self.calls[i].held {
                    self.calls[i].held = now_held;
                    let state = if now_held {
                        MediaState::Held
                    } else {
                        MediaState::Active
                    };
                    let mut m = Msg::new(Kind::Media(state));
                    m.vars = self.calls[i].vars.clone();
                    out(m);
                }
            }
            i += 1;
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::string::String as Text;
    use std::vec::Vec as StdVec;

    /// The JSON lines of a trace recorded from baresip 1.0.0 (`tests/sip/traces/`).
    pub(crate) fn trace(text: &str) -> StdVec<Json> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| serde_json::from_str(l).expect("trace line is JSON"))
            .collect()
    }

    fn is_event(j: &Json) -> bool {
        j.get("event").and_then(Json::as_bool) == Some(true)
    }

    /// The recorded answer with this token (its `data`).
    fn recorded<'a>(lines: &'a [Json], token: &str) -> &'a str {
        lines
            .iter()
            .find(|j| j.get("token").and_then(Json::as_str) == Some(token))
            .and_then(|j| j.get("data")?.as_str())
            .expect("recorded answer")
    }

    fn answer(q: Query, data: &str) -> Json {
        serde_json::json!({"response": true, "ok": true, "data": data, "token": format!("en-{}", q.token)})
    }

    /// `Call(Incoming) call_id=.. remote=..` with the variables in their canonical order.
    pub(crate) fn show(m: &Msg) -> Text {
        let mut s = format!("{:?}", m.kind);
        for v in Var::ALL {
            if !m.vars.get(v).is_empty() {
                s += &format!(" {}={}", v.name(), m.vars.get(v));
            }
        }
        if m.answered_elsewhere {
            s += " elsewhere";
        }
        s
    }

    /// Feeds the events of a trace (answers recorded in it are skipped); queries stay unanswered.
    fn replay(m: &mut Mapper, lines: &[Json]) -> StdVec<Text> {
        let mut got = StdVec::new();
        for j in lines.iter().filter(|j| is_event(j)) {
            m.input(j, &mut |msg| got.push(show(&msg)));
        }
        got
    }

    const IN: &str = "local=1001 remote=1002 display_remote=Bob & Alice #2 call_id=in-answered-1 \
                      active_user=1001 active_host=pbx.test calldirection=incoming";

    #[test]
    fn registration_ok_then_removed() {
        let mut m = Mapper::new();
        let got = replay(
            &mut m,
            &trace(include_str!("../../tests/sip/traces/register_ok.txt")),
        );
        let vars = "local=1001 active_user=1001 active_host=pbx.test";
        assert_eq!(
            got,
            [
                format!("Register(Registering) {vars}"),
                format!("Register(Ok) {vars}"),
                format!("Register(Off) {vars}"),
            ]
        );
    }

    #[test]
    fn registration_refused() {
        let mut m = Mapper::new();
        let got = replay(
            &mut m,
            &trace(include_str!("../../tests/sip/traces/register_403.txt")),
        );
        let vars = "local=1001 active_user=1001 active_host=pbx.test";
        assert_eq!(
            got,
            [
                format!("Register(Registering) {vars}"),
                format!("Register(Failed) {vars}"),
                format!("Register(Off) {vars}"),
            ]
        );
    }

    #[test]
    fn incoming_answered_then_caller_hangs_up() {
        let mut m = Mapper::new();
        let got = replay(
            &mut m,
            &trace(include_str!("../../tests/sip/traces/in_answered.txt")),
        );
        assert_eq!(
            got,
            [
                format!("Call(Incoming) {IN}"),
                format!("Call(Confirmed) {IN}"),
                format!("Call(Ended) {IN}"),
            ]
        );
        // The SDP offer/answer before the call was established is no hold: nothing to ask.
        assert_eq!(m.poll_query(0), None);
        assert_eq!(m.calls(), 0);
    }

    #[test]
    fn incoming_cancelled_or_rejected_ends_unanswered() {
        for (text, id) in [
            (
                include_str!("../../tests/sip/traces/in_cancel.txt"),
                "in-cancel-1",
            ),
            (
                include_str!("../../tests/sip/traces/in_rejected.txt"),
                "in-rejected-1",
            ),
            // Answered elsewhere (CANCEL with Reason cause=200): 1.0.0 does not say so.
            (
                include_str!("../../tests/sip/traces/in_cancel_elsewhere.txt"),
                "in-elsewhere-1",
            ),
        ] {
            let mut m = Mapper::new();
            let got = replay(&mut m, &trace(text));
            let vars = IN.replace("in-answered-1", id);
            assert_eq!(
                got,
                [
                    format!("Call(Incoming) {vars}"),
                    format!("Call(Ended) {vars}")
                ],
                "{id}"
            );
        }
    }

    pub(crate) fn out_vars(id: &str) -> Text {
        format!(
            "local=1001 remote=1003 call_id={id} active_user=1001 active_host=pbx.test \
             calldirection=outgoing"
        )
    }

    #[test]
    fn outgoing_call_announced_by_callstat_at_once() {
        let lines = trace(include_str!(
            "../../tests/sip/traces/out_callstat_query.txt"
        ));
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        // The dial: CALL_LOCAL_SDP offer, outgoing, without Call-ID.
        assert_eq!(
            m.input(&lines[0], &mut |x| got.push(show(&x))),
            Handled::Event(0)
        );
        assert!(got.is_empty());
        let q = m.poll_query(10).expect("asks callstat");
        assert_eq!(q.kind, QueryKind::CallStat);
        assert_eq!(
            q.json().as_str(),
            format!("{{\"command\":\"callstat\",\"token\":\"en-{}\"}}", q.token)
        );
        // The answer to someone else's command (the test's dial) is not ours.
        assert_eq!(
            m.input(&lines[1], &mut |x| got.push(show(&x))),
            Handled::Ignored
        );
        let a = answer(q, recorded(&lines, "c1"));
        assert_eq!(m.input(&a, &mut |x| got.push(show(&x))), Handled::Answer(1));
        let v = out_vars("ae248b7d18a3ec8e");
        assert_eq!(got, [format!("Call(Calling) {v}")]);
        // Then the hang-up, with the same Call-ID.
        m.input(&lines[3], &mut |x| got.push(show(&x)));
        assert_eq!(
            got,
            [format!("Call(Calling) {v}"), format!("Call(Ended) {v}")]
        );
        assert_eq!(m.poll_query(20), None);
    }

    #[test]
    fn outgoing_call_announced_by_its_first_event_with_a_call_id() {
        // callstat unanswered (or not fitting): the first event with the Call-ID announces it.
        let mut m = Mapper::new();
        let got = replay(
            &mut m,
            &trace(include_str!("../../tests/sip/traces/out_answered.txt")),
        );
        let v = out_vars("e075fe2925dd8dca");
        assert_eq!(
            got,
            [
                format!("Call(Calling) {v}"),
                format!("Call(Ringing) {v}"),
                format!("Call(Confirmed) {v}"),
                format!("Call(Ended) {v}"),
            ]
        );
    }

    #[test]
    fn callstat_about_another_call_is_not_taken() {
        let lines = trace(include_str!(
            "../../tests/sip/traces/out_callstat_query.txt"
        ));
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        let mut dial = lines[0].clone();
        dial["peeruri"] = "sip:1009@pbx.test".into();
        m.input(&dial, &mut |x| got.push(show(&x)));
        let q = m.poll_query(0).unwrap();
        m.input(&answer(q, recorded(&lines, "c1")), &mut |x| {
            got.push(show(&x))
        });
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn outgoing_busy() {
        let mut m = Mapper::new();
        let got = replay(
            &mut m,
            &trace(include_str!("../../tests/sip/traces/out_busy.txt")),
        );
        let v = out_vars("5336824235ced67b");
        assert_eq!(
            got,
            [
                format!("Call(Calling) {v}"),
                format!("Call(Ringing) {v}"),
                format!("Call(Ended) {v}")
            ]
        );
    }

    #[test]
    fn dial_that_never_sent_an_invite_still_ends() {
        let mut m = Mapper::new();
        let got = replay(
            &mut m,
            &trace(include_str!(
                "../../tests/sip/traces/out_no_invite_hangup.txt"
            )),
        );
        let v = out_vars("0b01ac06f2dc3144");
        assert_eq!(
            got,
            [format!("Call(Calling) {v}"), format!("Call(Ended) {v}")]
        );
    }

    #[test]
    fn blind_transfer_is_reported_before_the_end() {
        let mut m = Mapper::new();
        let got = replay(
            &mut m,
            &trace(include_str!("../../tests/sip/traces/out_transfer.txt")),
        );
        let v = out_vars("4dd2072fea7d4909");
        assert_eq!(
            got,
            [
                format!("Call(Calling) {v}"),
                format!("Call(Ringing) {v}"),
                format!("Call(Confirmed) {v}"),
                format!("Refer(Blind) {v}"),
                format!("Call(Ended) {v}"),
            ]
        );
    }

    #[test]
    fn hold_and_resume_from_listcalls() {
        let lines = trace(include_str!("../../tests/sip/traces/out_hold_query.txt"));
        let events: StdVec<&Json> = lines.iter().filter(|j| is_event(j)).collect();
        let (active, held) = (recorded(&lines, "a3"), recorded(&lines, "b3"));
        assert!(held.contains("(on hold)") && !active.contains("(on hold)"));
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        let mut feed = |m: &mut Mapper, j: &Json| {
            m.input(j, &mut |x| got.push(show(&x)));
        };
        // Dial, ringing, answer SDP, established: nothing to ask once the callstat is given up.
        for j in &events[..4] {
            feed(&mut m, j);
        }
        let q = m.poll_query(0).unwrap();
        assert_eq!(q.kind, QueryKind::CallStat);
        assert_eq!(m.poll_query(QUERY_TIMEOUT_MS - 1), None);
        assert_eq!(m.poll_query(QUERY_TIMEOUT_MS), None);
        assert_eq!(m.stats.query_timeouts, 1);
        // /hold: an SDP answer on the established call; baresip's flag says on hold.
        feed(&mut m, events[4]);
        let q = m.poll_query(4_000).unwrap();
        assert_eq!(q.kind, QueryKind::ListCalls);
        feed(&mut m, &answer(q, held));
        // /resume: the same SDP event; the flag is gone.
        feed(&mut m, events[5]);
        let q = m.poll_query(5_000).unwrap();
        feed(&mut m, &answer(q, active));
        feed(&mut m, events[6]);
        let v = out_vars("6487ba45e75aaf8b");
        assert_eq!(
            got,
            [
                format!("Call(Calling) {v}"),
                format!("Call(Ringing) {v}"),
                format!("Call(Confirmed) {v}"),
                format!("Media(Held) {v}"),
                format!("Media(Active) {v}"),
                format!("Call(Ended) {v}"),
            ]
        );
    }

    #[test]
    fn sdp_exchange_without_hold_change_reports_nothing() {
        // A re-INVITE from the peer (or /reinvite): SDP events, but the flag does not change.
        let lines = trace(include_str!("../../tests/sip/traces/out_hold_query.txt"));
        let events: StdVec<&Json> = lines.iter().filter(|j| is_event(j)).collect();
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        for j in &events[..5] {
            m.input(j, &mut |x| got.push(show(&x)));
        }
        let _ = m.poll_query(0); // callstat, unanswered
        let q = m.poll_query(QUERY_TIMEOUT_MS).unwrap();
        assert_eq!(q.kind, QueryKind::ListCalls);
        m.input(&answer(q, recorded(&lines, "a3")), &mut |x| {
            got.push(show(&x))
        });
        assert_eq!(got.len(), 3, "{got:?}");
    }

    #[test]
    fn hold_by_the_peer_is_no_hold_by_the_phone() {
        let lines = trace(include_str!("../../tests/sip/traces/in_remote_hold.txt"));
        let events: StdVec<&Json> = lines.iter().filter(|j| is_event(j)).collect();
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        for j in &events[..4] {
            m.input(j, &mut |x| got.push(show(&x)));
        }
        assert_eq!(
            m.poll_query(0),
            None,
            "nothing to ask before the call is established"
        );
        // The peer's re-INVITE (sendonly): only a remote SDP offer in 1.0.0.
        m.input(events[4], &mut |x| got.push(show(&x)));
        let q = m.poll_query(0).expect("asks listcalls");
        assert_eq!(q.kind, QueryKind::ListCalls);
        assert_eq!(
            m.input(&answer(q, recorded(&lines, "r2")), &mut |x| got
                .push(show(&x))),
            Handled::Answer(0)
        );
        m.input(events[5], &mut |x| got.push(show(&x)));
        let v = IN.replace("in-answered-1", "in-remote-hold-1");
        assert_eq!(
            got,
            [
                format!("Call(Incoming) {v}"),
                format!("Call(Confirmed) {v}"),
                format!("Call(Ended) {v}")
            ]
        );
    }

    #[test]
    fn two_calls_to_one_peer_are_not_guessed() {
        let lines = trace(include_str!("../../tests/sip/traces/out_hold_query.txt"));
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        for id in ["x1", "x2"] {
            for j in lines.iter().filter(|j| is_event(j)).take(4) {
                let mut j = j.clone();
                if j.get("id").is_some() {
                    j["id"] = id.into();
                }
                m.input(&j, &mut |x| got.push(show(&x)));
            }
        }
        assert_eq!(m.calls(), 2);
        let both = "\n--- Active calls (2) ---\n  [line 1]  0:00:03  ESTABLISHED  (on hold)  sip:1003@pbx.test\n\
                    > [line 2]  0:00:01  ESTABLISHED             sip:1003@pbx.test\n\n";
        m.want_listcalls = true;
        m.want_callstat = false;
        m.pending = None;
        let q = m.poll_query(0).unwrap();
        assert_eq!(q.kind, QueryKind::ListCalls);
        let before = got.len();
        m.input(&answer(q, both), &mut |x| got.push(show(&x)));
        assert_eq!(got.len(), before);
        assert_eq!(m.stats.ambiguous, 2);
    }

    #[test]
    fn after_a_reconnect_calls_baresip_no_longer_has_are_ended() {
        let lines = trace(include_str!("../../tests/sip/traces/in_answered.txt"));
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        for j in &lines[..4] {
            m.input(j, &mut |x| got.push(show(&x)));
        }
        assert_eq!(m.calls(), 1);
        m.connected();
        let q = m.poll_query(0).unwrap();
        assert_eq!(q.kind, QueryKind::ListCalls);
        m.input(&answer(q, "\n--- Active calls (0) ---\n\n"), &mut |x| {
            got.push(show(&x))
        });
        assert_eq!(got.last().unwrap(), &format!("Call(Ended) {IN}"));
        assert_eq!(m.calls(), 0);
        // The CALL_CLOSED that follows (had it come) is then about an unknown call.
        m.input(&lines[4], &mut |x| got.push(show(&x)));
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_restarted_baresip_without_accounts_has_no_calls() {
        // Recorded: baresip 1.0.0 restarted (no UA yet) answers listcalls like this.
        let lines = trace(include_str!("../../tests/sip/traces/restart_listcalls.txt"));
        let call = trace(include_str!("../../tests/sip/traces/out_answered.txt"));
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        for j in call.iter().take(4) {
            m.input(j, &mut |x| got.push(show(&x)));
        }
        m.connected();
        let q = m.poll_query(0).unwrap();
        assert_eq!(q.kind, QueryKind::ListCalls);
        let data = lines[0]["data"].as_str().unwrap();
        m.input(&answer(q, data), &mut |x| got.push(show(&x)));
        let v = out_vars("e075fe2925dd8dca");
        assert_eq!(got.last().unwrap(), &format!("Call(Ended) {v}"));
        assert_eq!(m.calls(), 0);
    }

    #[test]
    fn reconnect_learns_what_it_missed_of_a_live_call() {
        let lines = trace(include_str!("../../tests/sip/traces/in_answered.txt"));
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        m.input(&lines[0], &mut |x| got.push(show(&x)));
        m.connected();
        let q = m.poll_query(0).unwrap();
        let listed = "\n--- Active calls (1) ---\n> [line 1]  0:00:04  ESTABLISHED  (on hold)  sip:1002@127.0.0.1:5062\n\n";
        m.input(&answer(q, listed), &mut |x| got.push(show(&x)));
        assert_eq!(
            got,
            [
                format!("Call(Incoming) {IN}"),
                format!("Call(Confirmed) {IN}"),
                format!("Media(Held) {IN}")
            ]
        );
    }

    #[test]
    fn unknown_and_malformed_input_is_ignored_without_panic() {
        let mut m = Mapper::new();
        let mut got = StdVec::new();
        for text in [
            r#"{"event":true,"type":"MWI_NOTIFY","class":"mwi","accountaor":"sip:1001@pbx.test"}"#,
            r#"{"event":true,"type":"TRANSFER_FAILED","class":"call","id":"zz"}"#,
            r#"{"event":true}"#,
            r#"{"event":"yes","type":"CALL_INCOMING"}"#,
            r#"{"event":true,"type":12,"id":[1,2]}"#,
            r#"[1,2,3]"#,
            r#""text""#,
            r#"{"response":true,"ok":true,"data":"x","token":"en-1"}"#,
            r#"{"response":true,"token":7}"#,
        ] {
            let j: Json = serde_json::from_str(text).unwrap();
            assert_eq!(
                m.input(&j, &mut |x| got.push(show(&x))),
                Handled::Ignored,
                "{text}"
            );
        }
        // Known types with missing or odd fields: no call without a Call-ID, no panic.
        for text in [
            r#"{"event":true,"type":"CALL_INCOMING"}"#,
            r#"{"event":true,"type":"CALL_CLOSED","param":"x"}"#,
            r#"{"event":true,"type":"CALL_ESTABLISHED","id":"q","peeruri":7}"#,
            r#"{"event":true,"type":"REGISTER_OK","accountaor":"garbage"}"#,
            r#"{"event":true,"type":"CALL_REMOTE_SDP","id":"q","param":"answer"}"#,
        ] {
            let j: Json = serde_json::from_str(text).unwrap();
            assert!(
                matches!(m.input(&j, &mut |x| got.push(show(&x))), Handled::Event(_)),
                "{text}"
            );
        }
        assert_eq!(
            got,
            [
                // A call first seen established (connected mid-call) is announced first.
                "Call(Incoming) call_id=q calldirection=incoming",
                "Call(Confirmed) call_id=q calldirection=incoming",
                "Register(Ok) local=garbage active_user=garbage active_host=garbage",
            ]
        );
    }

    #[test]
    fn long_values_are_cut_not_refused() {
        let mut m = Mapper::new();
        let long = "9".repeat(3 * crate::core::var::VALUE_CAP);
        let j = serde_json::json!({"event": true, "type": "CALL_INCOMING", "direction": "incoming",
            "id": long, "peeruri": format!("sip:{long}@h"), "peerdisplayname": "é".repeat(400),
            "accountaor": "sip:1001@pbx.test"});
        let mut got = StdVec::new();
        m.input(&j, &mut |x| got.push(x));
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].vars.get(Var::CallId).len(),
            crate::core::var::VALUE_CAP
        );
        // The same (cut) Call-ID finds the call again.
        m.input(&j, &mut |x| got.push(x));
        assert_eq!(got.len(), 1);
        assert_eq!(m.calls(), 1);
    }

    #[test]
    fn call_table_full_still_reports() {
        let mut m = Mapper::new();
        let mut n = 0;
        for i in 0..MAX_MAPPED_CALLS + 2 {
            let j = serde_json::json!({"event": true, "type": "CALL_INCOMING",
                "direction": "incoming", "id": format!("c{i}"), "peeruri": "sip:1@h"});
            m.input(&j, &mut |_| n += 1);
        }
        assert_eq!(n, MAX_MAPPED_CALLS + 2);
        assert_eq!(m.calls(), MAX_MAPPED_CALLS);
        assert_eq!(m.stats.call_table_full, 2);
    }

    #[test]
    fn host_and_user_of_an_account() {
        let mut v = Vars::new();
        account_vars(&mut v, "sip:1001@10.1.2.3:5080;transport=tcp");
        assert_eq!(v.get(Var::ActiveHost), "10.1.2.3:5080");
        assert_eq!(v.get(Var::ActiveUser), "1001");
        account_vars(&mut v, "sips:bob@pbx.example");
        assert_eq!(v.get(Var::ActiveHost), "pbx.example");
        assert_eq!(v.get(Var::Local), "bob");
    }
}
