//! A counting global allocator, and the heap-allocation count of the engine's event path.
//!
//! Counting is per thread (a `const` thread-local with no destructor, so it is safe to touch from
//! inside the allocator): only what the measuring thread allocates between `arm` and `disarm`
//! counts, whatever the bench's other threads do. With `--alloc-trace`, the first few allocations
//! in an armed window are recorded with a backtrace (run it in the test profile, which keeps
//! symbols: `cargo test --bench bench -- --alloc-trace`).

use event_notify::core::config::Config;
use event_notify::core::engine::{Engine, Now, Outcome};
use event_notify::core::hook::parse_kind;
use event_notify::{Msg, Var, Vars};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

pub struct Counting;

/// Every allocation of the process (all threads).
pub static TOTAL: AtomicU64 = AtomicU64::new(0);
static TRACE: AtomicBool = AtomicBool::new(false);
const TRACE_KEEP: usize = 4;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static MINE: Cell<u64> = const { Cell::new(0) };
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
    static TRACES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

#[inline]
fn counted(size: usize) {
    TOTAL.fetch_add(1, Ordering::Relaxed);
    let armed = ARMED.try_with(|a| a.get()).unwrap_or(false);
    if !armed {
        return;
    }
    let _ = MINE.try_with(|m| m.set(m.get() + 1));
    if TRACE.load(Ordering::Relaxed) && !IN_TRACE.try_with(|t| t.get()).unwrap_or(true) {
        let _ = IN_TRACE.try_with(|t| t.set(true));
        let _ = TRACES.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                if t.len() < TRACE_KEEP {
                    let bt = std::backtrace::Backtrace::force_capture();
                    t.push(format!("allocation of {size} bytes:\n{bt}"));
                }
            }
        });
        let _ = IN_TRACE.try_with(|t| t.set(false));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        counted(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        counted(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        counted(new);
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

fn arm() {
    MINE.with(|m| m.set(0));
    ARMED.with(|a| a.set(true));
}

fn disarm() -> u64 {
    ARMED.with(|a| a.set(false));
    MINE.with(|m| m.get())
}

pub fn set_trace(on: bool) {
    TRACE.store(on, Ordering::Relaxed);
}

pub fn take_traces() -> Vec<String> {
    TRACES.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

/// What the engine path cost.
pub struct EngineCost {
    pub messages: u64,
    pub derived: u64,
    /// Allocations inside `Engine::handle` (transition → derived events → expanded URL/body →
    /// outbox).
    pub handle_allocs: u64,
    /// Allocations inside `next_job_ref` + `complete` (handing the notification out, settling it).
    pub dispatch_allocs: u64,
    /// Allocations in `Engine::next_job` (the copy the daemon hands to a worker).
    pub next_job_allocs: u64,
    pub handle_ns_per_msg: f64,
    /// Per kind of message: (label, messages, allocations in handle).
    pub by_kind: Vec<(String, u64, u64)>,
}

/// Every event configured, GET and POST, a JSON body, credentials: the whole expansion path.
pub const ENGINE_CONFIG: &str = r#"{"events": {
  "incoming_call": "192.168.5.10:8080/in?from=$remote&name=$display_remote&id=$call_id&ip=$phone_ip&mac=$mac&ev=$event&t=$timestamp",
  "outgoing_call": "192.168.5.10:8080/out?to=$remote&id=$call_id",
  "establish_call": "192.168.5.10:8080/est?id=$call_id&dir=$calldirection",
  "terminate_call": {"url": "https://crm.example/end", "method": "POST", "content_type": "json",
      "body": "{\"id\":\"$call_id\",\"t\":$duration,\"n\":\"$display_remote\",\"dir\":\"$calldirection\"}",
      "username": "phone", "password": "s3cret"},
  "missed_call": "192.168.5.10:8080/missed?from=$remote&name=$display_remote",
  "hold_call": "192.168.5.10:8080/hold?id=$call_id", "resume_call": "192.168.5.10:8080/resume?id=$call_id",
  "blind_transferring": "192.168.5.10:8080/xfer?id=$call_id",
  "dnd_on": "192.168.5.10:8080/dnd?on=1&u=$active_user", "dnd_off": "192.168.5.10:8080/dnd?on=0",
  "registration": "192.168.5.10:8080/reg?u=$active_user&h=$active_host",
  "sign_off": "192.168.5.10:8080/unreg?u=$active_user",
  "off_hook": "192.168.5.10:8080/hook?off=1", "on_hook": "192.168.5.10:8080/hook?off=0"
}}"#;

fn msg(verb: &str, state: Option<&str>, vars: &[(Var, &str)]) -> Msg {
    let kind = parse_kind(verb, state).expect("bench message kinds are valid");
    let mut m = Msg::new(kind);
    for (v, s) in vars {
        m.vars.set(*v, s);
    }
    m
}

/// One cycle of firmware reports: registration, an answered call with hold, resume and a
/// transfer, a missed call, DND, the hook, a direct event, sign-off.
fn cycle(i: usize) -> Vec<(&'static str, Msg)> {
    let a = format!("a{i}@pbx");
    let b = format!("b{i}@pbx");
    let user = format!("10{}", i % 10);
    let acct = [
        (Var::ActiveUser, user.as_str()),
        (Var::ActiveHost, "pbx.example"),
    ];
    let call_in = [
        (Var::CallId, a.as_str()),
        (Var::Remote, "sip:1002@pbx.example"),
        (Var::DisplayRemote, "Bob & Alice #2"),
        (Var::Local, "sip:1001@pbx.example"),
        (Var::ActiveUser, user.as_str()),
        (Var::ActiveHost, "pbx.example"),
    ];
    let id_a = [(Var::CallId, a.as_str())];
    let id_b = [(Var::CallId, b.as_str())];
    let call_b = [
        (Var::CallId, b.as_str()),
        (Var::Remote, "sip:1003@pbx.example"),
        (Var::DisplayRemote, "Carol"),
    ];
    vec![
        ("register ok", msg("register", Some("ok"), &acct)),
        ("call incoming", msg("call", Some("incoming"), &call_in)),
        ("hook off", msg("hook", Some("off"), &[])),
        ("call confirmed", msg("call", Some("confirmed"), &id_a)),
        ("media held", msg("media", Some("held"), &id_a)),
        ("media active", msg("media", Some("active"), &id_a)),
        ("refer blind", msg("refer", Some("blind"), &id_a)),
        ("call ended", msg("call", Some("ended"), &id_a)),
        ("hook on", msg("hook", Some("on"), &[])),
        ("call incoming", msg("call", Some("incoming"), &call_b)),
        ("call ended (missed)", msg("call", Some("ended"), &id_b)),
        ("dnd on", msg("dnd", Some("on"), &acct)),
        ("dnd off", msg("dnd", Some("off"), &[])),
        ("direct incoming_call", msg("incoming_call", None, &call_in)),
        ("register off", msg("register", Some("off"), &acct)),
    ]
}

/// Runs `cycles` cycles through one engine; counts the allocations of each step.
pub fn engine_cost(cycles: usize) -> Result<EngineCost, String> {
    let (cfg, _) =
        Config::from_json(ENGINE_CONFIG).map_err(|p| format!("bench config refused: {p:?}"))?;
    let mut e = Engine::new(cfg, 7);
    let mut device = Vars::new();
    device.set(Var::PhoneIp, "192.168.5.23");
    device.set(Var::Mac, "000b82a1b2c3");
    device.set(Var::Product, "GXV3370");
    device.set(Var::ProgramVersion, "1.0.1.28");
    device.set(Var::HardwareVersion, "V1.2A");
    device.set(Var::Language, "en");
    // Messages built before counting starts: building a Msg is the producer's business.
    // Cycle 0 warms up (first-use paths) and is not counted.
    let all: Vec<Vec<(&'static str, Msg)>> = (0..=cycles).map(cycle).collect();
    let mut c = EngineCost {
        messages: 0,
        derived: 0,
        handle_allocs: 0,
        dispatch_allocs: 0,
        next_job_allocs: 0,
        handle_ns_per_msg: 0.0,
        by_kind: Vec::new(),
    };
    let mut handle_ns = 0u128;
    let mut ms = 1_000u64;
    for (k, msgs) in all.iter().enumerate() {
        let counting = k > 0;
        for (label, m) in msgs {
            ms += 1_000;
            let now = Now {
                ms,
                unix_s: 1_700_000_000 + ms / 1000,
            };
            arm();
            let t0 = Instant::now();
            let h = e.handle(m, &device, now, &mut |_| {});
            let dt = t0.elapsed();
            let a = disarm();
            let h = h.map_err(|err| format!("{label}: {err:?}"))?;
            if counting {
                c.messages += 1;
                c.derived += h.derived as u64;
                c.handle_allocs += a;
                handle_ns += dt.as_nanos();
                match c.by_kind.iter_mut().find(|x| x.0 == *label) {
                    Some(x) => {
                        x.1 += 1;
                        x.2 += a;
                    }
                    None => c.by_kind.push((label.to_string(), 1, a)),
                }
            }
            // Hand everything out and settle it, as the daemon does; half by copy (next_job),
            // half by reference (next_job_ref).
            let mut flip = false;
            loop {
                flip = !flip;
                arm();
                let t = if flip {
                    e.next_job(now).map(|j| j.ticket)
                } else {
                    e.next_job_ref(now).map(|(t, _)| t)
                };
                let a_next = disarm();
                let Some(t) = t else { break };
                arm();
                e.complete(t, Outcome::Delivered(200), now, &mut |_| {});
                let a_done = disarm();
                if counting {
                    if flip {
                        c.next_job_allocs += a_next;
                    }
                    c.dispatch_allocs += a_next + a_done;
                }
            }
        }
    }
    if c.derived == 0 {
        return Err("the engine derived no events: the bench config or messages are wrong".into());
    }
    c.handle_ns_per_msg = handle_ns as f64 / c.messages.max(1) as f64;
    Ok(c)
}

/// Sizes of the engine's fixed storage (what one `Engine` costs, and what a by-value move of it
/// or of its parts puts on the stack).
pub fn storage_sizes() -> Vec<(&'static str, usize)> {
    use event_notify::core::{config, outbox, template, tracker};
    use std::mem::size_of;
    vec![
        ("Engine", size_of::<Engine>()),
        ("Outbox", size_of::<outbox::Outbox>()),
        ("Config", size_of::<config::Config>()),
        ("Tracker", size_of::<tracker::Tracker>()),
        ("Notification", size_of::<outbox::Notification>()),
        ("Template", size_of::<template::Template>()),
        ("Msg", size_of::<Msg>()),
        ("Vars", size_of::<Vars>()),
    ]
}
