//! The configuration model (what the Event Notify page saves) and its validation.
//!
//! Loading never stops at the first problem: every problem is collected with its place
//! (`events.incoming_call.url: column 17: ...`) so `check` can report them all. This is the only
//! module that knows serde.

use super::event::Event;
use super::secret::{Secret, SECRET_CAP};
use super::template::{Credentials, Encoding, Template, CRED_CAP};
use serde_json::{Map, Value};
use std::fmt;

/// Largest config file accepted, in bytes.
pub const CONFIG_FILE_CAP: usize = 64 * 1024;
/// `delivery.max_age_s` when the config does not set it: a day. A CRM still wants a call
/// record after a night's outage; older than that, the outbox's room is better spent on new ones.
pub const DEFAULT_MAX_AGE_S: u32 = 86_400;

/// HTTP method of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// What one event sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventConfig {
    pub enabled: bool,
    pub method: Method,
    pub url: Template,
    pub body: Option<Template>,
    /// How values are encoded in the body.
    pub body_encoding: Encoding,
    pub content_type: &'static str,
    /// From the URL's userinfo, or the per-event username/password (which win).
    pub credentials: Option<Credentials>,
    /// Extra request headers: (name, value template), at most [`MAX_EVENT_HEADERS`].
    pub headers: Vec<(String, Template)>,
    /// Signs this event's requests (else `delivery.signing_secret`). Write-only.
    pub signing_secret: Option<Secret>,
}

/// Extra headers one event may set.
pub const MAX_EVENT_HEADERS: usize = 8;

/// Header names an event may not set: framing and connection headers (the HTTP client owns
/// them), the ones `content_type` and `username`/`password` set, and the delivery id and
/// signature headers.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "trailer",
    "expect",
    "content-type",
    "authorization",
    "user-agent",
    "x-event-notify-id",
    "x-event-notify-signature",
    "idempotency-key",
];

/// Default cap of the spool file.
pub const SPOOL_DEFAULT_MAX_BYTES: u64 = 1024 * 1024;
/// Smallest cap accepted: room for a few of the largest records.
pub const SPOOL_MIN_MAX_BYTES: u64 = 16 * 1024;
/// Largest cap accepted (the spool file is read whole at start and at compaction).
pub const SPOOL_MAX_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The optional spool (`delivery.spool`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The spool file, on the data partition.
    pub path: String,
    /// Its cap in bytes.
    pub max_bytes: u64,
}

/// Delivery settings. Every one has a default, so a config with only `events` works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub connect_timeout_ms: u32,
    /// Whole request, connect included.
    pub timeout_ms: u32,
    /// Attempts per notification, the first included; 0 (the default) = until delivered, bounded
    /// by `max_age_s` and the outbox. Kept for old configs: a value other than 0 gives up after
    /// that many attempts (with a warning: an outage can then lose notifications).
    pub attempts: u32,
    /// Age after which a notification that still fails is given up, in seconds; 0 = never
    /// (only the outbox's capacity, oldest first, then drops).
    pub max_age_s: u32,
    pub backoff_initial_ms: u32,
    pub backoff_max_ms: u32,
    /// How long SIGTERM waits for the outbox to drain.
    pub shutdown_flush_ms: u32,
    /// Extra CA certificates (PEM) trusted for https, beside the built-in roots.
    pub ca_file: Option<String>,
    /// Signs every event's requests that has no secret of its own. Write-only.
    pub signing_secret: Option<Secret>,
    /// Keeps what waits for a retry across restarts; `None`: memory only.
    pub spool: Option<SpoolConfig>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            attempts: 0,
            max_age_s: DEFAULT_MAX_AGE_S,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            shutdown_flush_ms: 3_000,
            ca_file: None,
            signing_secret: None,
            spool: None,
        }
    }
}

/// Device settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// Interface whose address and MAC give `$phone_ip` and `$mac` (else the board's).
    pub interface: Option<String>,
    /// `$language`.
    pub language: Option<String>,
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub events: [Option<EventConfig>; Event::COUNT],
    pub delivery: Delivery,
    pub device: Device,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            events: [const { None }; Event::COUNT],
            delivery: Delivery::default(),
            device: Device::default(),
        }
    }
}

/// One problem found in a config, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `events.incoming_call.url`, `delivery.attempts`, or `` for the whole file.
    pub place: String,
    pub message: String,
    /// Warnings do not make the config invalid.
    pub warning: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.warning { "warning" } else { "error" };
        if self.place.is_empty() {
            write!(f, "{level}: {}", self.message)
        } else {
            write!(f, "{level}: {}: {}", self.place, self.message)
        }
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn error(&mut self, place: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            place: place.into(),
            message: message.into(),
            warning: false,
        });
    }
    fn warn(&mut self, place: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            place: place.into(),
            message: message.into(),
            warning: true,
        });
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses JSON like `serde_json::from_str`, but refuses an object with the same key twice
/// (serde_json keeps the last one silently).
fn strict_json(text: &str) -> Result<Value, serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    struct Strict;
    impl<'de> DeserializeSeed<'de> for Strict {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(Strict)
        }
    }
    impl<'de> Visitor<'de> for Strict {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
            let mut v = Vec::new();
            while let Some(x) = a.next_element_seed(Strict)? {
                v.push(x);
            }
            Ok(Value::Array(v))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
            let mut m = Map::new();
            while let Some(k) = a.next_key::<String>()? {
                if m.contains_key(&k) {
                    return Err(A::Error::custom(format_args!(
                        "the key \"{}\" is set twice in one object",
                        k.escape_debug()
                    )));
                }
                let v = a.next_value_seed(Strict)?;
                m.insert(k, v);
            }
            Ok(Value::Object(m))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Where a JSON syntax error is, as `line L column C`.
fn syntax_place(e: &serde_json::Error) -> String {
    format!("line {} column {}", e.line(), e.column())
}

impl Config {
    /// Parses and validates a config. `Ok` carries the config and its warnings; `Err` every
    /// problem (errors and warnings).
    pub fn from_json(text: &str) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
        let mut p = Problems(Vec::new());
        if text.len() > CONFIG_FILE_CAP {
            p.error("", format!("file larger than {CONFIG_FILE_CAP} bytes"));
            return Err(p.0);
        }
        let root: Value = match strict_json(text) {
            Ok(v) => v,
            Err(e) => {
                p.error(syntax_place(&e), format!("invalid JSON: {e}"));
                return Err(p.0);
            }
        };
        let Value::Object(root) = root else {
            p.error(
                "",
                format!("the config must be a JSON object, not {}", type_name(&root)),
            );
            return Err(p.0);
        };
        let mut cfg = Config::default();
        for (k, v) in &root {
            match k.as_str() {
                "events" => parse_events(v, &mut cfg, &mut p),
                "delivery" => parse_delivery(v, &mut cfg.delivery, &mut p),
                "device" => parse_device(v, &mut cfg.device, &mut p),
                other => p.error(other, "unknown setting (expected events, delivery, device)"),
            }
        }
        if !root.contains_key("events") {
            p.warn("events", "no events configured: nothing will be sent");
        }
        if p.0.iter().any(|x| !x.warning) {
            Err(p.0)
        } else {
            Ok((cfg, p.0))
        }
    }

    pub fn event(&self, e: Event) -> Option<&EventConfig> {
        self.events[e.index()].as_ref().filter(|c| c.enabled)
    }
}

fn parse_events(v: &Value, cfg: &mut Config, p: &mut Problems) {
    let Value::Object(map) = v else {
        p.error(
            "events",
            format!("must be an object of event keys, not {}", type_name(v)),
        );
        return;
    };
    let mut seen: [Option<&str>; Event::COUNT] = [None; Event::COUNT];
    for (key, val) in map {
        let place = format!("events.{key}");
        let Some(ev) = Event::from_name(key) else {
            p.error(&place, "unknown event (see `event-notify events`)");
            continue;
        };
        if let Some(first) = seen[ev.index()] {
            p.error(
                &place,
                format!("{} is set twice (also as \"{first}\")", ev.key()),
            );
            continue;
        }
        seen[ev.index()] = Some(key);
        cfg.events[ev.index()] = parse_event(&place, val, p);
    }
}

fn parse_url(place: &str, url: &str, p: &mut Problems) -> Option<(Template, Option<Credentials>)> {
    match Template::parse_url(url) {
        Ok((t, c)) => {
            if cfg!(not(feature = "tls"))
                && t.as_str()
                    .get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            {
                p.error(
                    place,
                    "https:// needs a build with TLS (feature \"tls\"); this one has none",
                );
                return None;
            }
            for (col, word) in t.unknown_vars() {
                p.warn(
                    place,
                    format!("column {col}: unknown variable {word} is sent as typed"),
                );
            }
            Some((t, c))
        }
        Err(e) => {
            p.error(place, e.to_string());
            None
        }
    }
}

/// The fields of one event object, as read; [`finish_event`] checks them together.
struct EventFields<'a> {
    enabled: bool,
    method: Method,
    url: Option<Template>,
    url_creds: Option<Credentials>,
    body: Option<&'a str>,
    content_type: Option<&'a str>,
    user: Option<&'a str>,
    password: Option<&'a str>,
    headers: Vec<(String, Template)>,
    signing_secret: Option<Secret>,
}

fn parse_event(place: &str, v: &Value, p: &mut Problems) -> Option<EventConfig> {
    let obj = match v {
        Value::Null => return None,
        Value::String(s) if s.trim().is_empty() => return None,
        Value::String(s) => {
            let (url, credentials) = parse_url(&format!("{place}.url"), s, p)?;
            return Some(EventConfig {
                enabled: true,
                method: Method::Get,
                url,
                body: None,
                body_encoding: Encoding::Percent,
                content_type: FORM,
                credentials,
                headers: Vec::new(),
                signing_secret: None,
            });
        }
        Value::Object(o) => o,
        other => {
            p.error(
                place,
                format!(
                    "must be a URL string or an object, not {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    let errors_before = p.0.iter().filter(|x| !x.warning).count();
    let mut f = EventFields {
        enabled: true,
        method: Method::Get,
        url: None,
        url_creds: None,
        body: None,
        content_type: None,
        user: None,
        password: None,
        headers: Vec::new(),
        signing_secret: None,
    };
    for (k, val) in obj {
        let fplace = format!("{place}.{k}");
        match k.as_str() {
            "url" => field_url(&fplace, val, &mut f, p),
            "enabled" => field_enabled(&fplace, val, &mut f, p),
            "method" => field_method(&fplace, val, &mut f, p),
            "body" => f.body = want_str(&fplace, val, p),
            "content_type" => f.content_type = want_str(&fplace, val, p),
            "username" => f.user = want_str(&fplace, val, p),
            "password" => f.password = want_str(&fplace, val, p), // never echoed
            "signing_secret" => f.signing_secret = parse_secret(&fplace, val, p),
            "headers" => f.headers = parse_headers(&fplace, val, p),
            _ => p.error(&fplace, "unknown field (expected url, enabled, method, body, content_type, username, password, headers, signing_secret)"),
        }
    }
    let e = finish_event(place, f, p);
    if p.0.iter().filter(|x| !x.warning).count() > errors_before {
        return None;
    }
    e
}

fn want_str<'a>(place: &str, v: &'a Value, p: &mut Problems) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s.as_str()),
        other => {
            p.error(place, format!("must be a string, not {}", type_name(other)));
            None
        }
    }
}

fn field_url(place: &str, v: &Value, f: &mut EventFields, p: &mut Problems) {
    let Some(s) = want_str(place, v, p) else {
        return;
    };
    if s.trim().is_empty() {
        f.url = None;
    } else if let Some((t, c)) = parse_url(place, s, p) {
        f.url = Some(t);
        f.url_creds = c;
    }
}

fn field_enabled(place: &str, v: &Value, f: &mut EventFields, p: &mut Problems) {
    match v {
        Value::Bool(b) => f.enabled = *b,
        other => p.error(
            place,
            format!("must be true or false, not {}", type_name(other)),
        ),
    }
}

fn field_method(place: &str, v: &Value, f: &mut EventFields, p: &mut Problems) {
    let Some(s) = want_str(place, v, p) else {
        return;
    };
    if s.eq_ignore_ascii_case("get") {
        f.method = Method::Get
    } else if s.eq_ignore_ascii_case("post") {
        f.method = Method::Post
    } else {
        p.error(place, format!("\"{s}\" is not GET or POST"))
    }
}

/// `content_type`: the header and how the body's values are encoded.
fn field_content_type(place: &str, ct: Option<&str>, p: &mut Problems) -> (&'static str, Encoding) {
    match ct.map(|s| s.trim()) {
        None | Some("") | Some("form") | Some("application/x-www-form-urlencoded") => {
            (FORM, Encoding::Percent)
        }
        Some("json") | Some("application/json") => (JSON, Encoding::Json),
        Some("text") | Some("text/plain") => (TEXT, Encoding::Percent),
        Some(other) => {
            p.error(
                format!("{place}.content_type"),
                format!("\"{other}\" is not form, json or text"),
            );
            (FORM, Encoding::Percent)
        }
    }
}

fn field_body(place: &str, f: &EventFields, p: &mut Problems) -> Option<Template> {
    let b = f.body.filter(|b| !b.is_empty())?;
    if f.method == Method::Get {
        p.error(format!("{place}.body"), "a body needs \"method\": \"POST\"");
    }
    match Template::parse_body(b) {
        Ok(t) => {
            for (col, word) in t.unknown_vars() {
                p.warn(
                    format!("{place}.body"),
                    format!("column {col}: unknown variable {word} is sent as typed"),
                );
            }
            Some(t)
        }
        Err(e) => {
            p.error(format!("{place}.body"), e.to_string());
            None
        }
    }
}

/// `username` / `password` (which win over the URL's user-info).
fn field_credentials(place: &str, f: &mut EventFields, p: &mut Problems) -> Option<Credentials> {
    let url_creds = f.url_creds.take();
    if f.user.is_none() && f.password.is_none() {
        return url_creds;
    }
    let mut c = Credentials::default();
    let u = f.user.unwrap_or("");
    let pw = f.password.unwrap_or("");
    if c.user.push_str(u).is_err() || u.contains(':') {
        p.error(
            format!("{place}.username"),
            format!("longer than {CRED_CAP} bytes or contains ':'"),
        );
    }
    if c.password.push_str(pw).is_err() {
        p.error(
            format!("{place}.password"),
            format!("longer than {CRED_CAP} bytes"),
        );
    }
    if url_creds.is_some() {
        p.warn(
            format!("{place}.username"),
            "overrides the user name and password in the URL",
        );
    }
    Some(c)
}

fn finish_event(place: &str, mut f: EventFields, p: &mut Problems) -> Option<EventConfig> {
    let (content_type, body_encoding) = field_content_type(place, f.content_type, p);
    let body = field_body(place, &f, p);
    let credentials = field_credentials(place, &mut f, p);
    Some(EventConfig {
        enabled: f.enabled,
        method: f.method,
        url: f.url?,
        body,
        body_encoding,
        content_type,
        credentials,
        headers: f.headers,
        signing_secret: f.signing_secret,
    })
}

/// A signing secret: a non-empty string of at most [`SECRET_CAP`] bytes; `""` or `null` is none.
/// Its value never appears in a problem.
fn parse_secret(place: &str, v: &Value, p: &mut Problems) -> Option<Secret> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => {
            let secret = Secret::new(s.as_bytes());
            if secret.is_none() {
                p.error(place, format!("longer than {SECRET_CAP} bytes"));
            }
            secret
        }
        other => {
            p.error(place, format!("must be a string, not {}", type_name(other)));
            None
        }
    }
}

/// `{"Name": "value template", ...}`: names are HTTP tokens and not reserved; values are
/// templates whose variables are percent-encoded, and no character of them can be a control
/// character, so no header can end early or start another.
fn parse_headers(place: &str, v: &Value, p: &mut Problems) -> Vec<(String, Template)> {
    let mut out = Vec::new();
    let map = match v {
        Value::Null => return out,
        Value::Object(m) => m,
        other => {
            p.error(
                place,
                format!(
                    "must be an object of \"Name\": \"value\", not {}",
                    type_name(other)
                ),
            );
            return out;
        }
    };
    if map.len() > MAX_EVENT_HEADERS {
        p.error(place, format!("more than {MAX_EVENT_HEADERS} headers"));
        return out;
    }
    for (name, val) in map {
        let hplace = format!("{place}.{name}");
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || name.len() > 64 || !name.bytes().all(tchar) {
            p.error(
                &hplace,
                "a header name is 1 to 64 letters, digits or !#$%&'*+-.^_`|~",
            );
            continue;
        }
        if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
        {
            p.error(&hplace, "this header is set by event-notify itself (content_type, username/password, or the delivery id and signature)");
            continue;
        }
        let Value::String(text) = val else {
            p.error(&hplace, format!("must be a string, not {}", type_name(val)));
            continue;
        };
        if let Some(col) = text.chars().position(|c| c.is_control()) {
            p.error(
                &hplace,
                format!(
                    "column {}: control characters (CR, LF, ...) cannot be in a header",
                    col + 1
                ),
            );
            continue;
        }
        match Template::parse_body(text) {
            Ok(t) => {
                for (col, word) in t.unknown_vars() {
                    // A credential header's value is not repeated, not even the part that
                    // looks like a variable.
                    let msg = if header_is_secret(name) {
                        format!("column {col}: an unknown variable is sent as typed (not shown: this header holds a credential)")
                    } else {
                        format!("column {col}: unknown variable {word} is sent as typed")
                    };
                    p.warn(&hplace, msg);
                }
                out.push((name.clone(), t));
            }
            Err(e) => p.error(&hplace, e.to_string()),
        }
    }
    out
}

/// A header whose value is a credential by its name (a token header, a cookie, an API key): its
/// value is masked by `expand` and the admin API, and never quoted in a config warning.
pub fn header_is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "auth",
        "token",
        "key",
        "secret",
        "password",
        "passwd",
        "cookie",
        "session",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

fn parse_spool(v: &Value, p: &mut Problems) -> Option<SpoolConfig> {
    let place = "delivery.spool";
    let map = match v {
        Value::Null => return None,
        Value::String(s) if s.is_empty() => return None,
        Value::String(s) => {
            return Some(SpoolConfig {
                path: s.clone(),
                max_bytes: SPOOL_DEFAULT_MAX_BYTES,
            })
        }
        Value::Object(m) => m,
        other => {
            p.error(
                place,
                format!(
                    "must be a file path or {{\"path\", \"max_bytes\"}}, not {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    let mut c = SpoolConfig {
        path: String::new(),
        max_bytes: SPOOL_DEFAULT_MAX_BYTES,
    };
    for (k, val) in map {
        let fplace = format!("{place}.{k}");
        match (k.as_str(), val) {
            ("path", Value::String(s)) if !s.is_empty() && !s.ends_with('/') => c.path = s.clone(),
            ("path", _) => p.error(&fplace, "must be the path of a file"),
            ("max_bytes", n) => match n.as_u64() {
                Some(b) if (SPOOL_MIN_MAX_BYTES..=SPOOL_MAX_MAX_BYTES).contains(&b) => c.max_bytes = b,
                _ => p.error(&fplace, format!("must be a whole number from {SPOOL_MIN_MAX_BYTES} to {SPOOL_MAX_MAX_BYTES}, not {n}")),
            },
            _ => p.error(&fplace, "unknown setting (expected path, max_bytes)"),
        }
    }
    if c.path.is_empty() {
        if !map.contains_key("path") {
            p.error(format!("{place}.path"), "is required");
        }
        return None;
    }
    Some(c)
}

pub const FORM: &str = "application/x-www-form-urlencoded";
pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";

fn number(place: &str, v: &Value, min: u64, max: u64, p: &mut Problems) -> Option<u32> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n as u32),
        _ => {
            p.error(
                place,
                format!("must be a whole number from {min} to {max}, not {v}"),
            );
            None
        }
    }
}

fn parse_delivery(v: &Value, d: &mut Delivery, p: &mut Problems) {
    let Value::Object(map) = v else {
        p.error(
            "delivery",
            format!("must be an object, not {}", type_name(v)),
        );
        return;
    };
    for (k, val) in map {
        let place = format!("delivery.{k}");
        let slot = match k.as_str() {
            "connect_timeout_ms" => {
                number(&place, val, 1, 60_000, p).map(|n| d.connect_timeout_ms = n)
            }
            "timeout_ms" => number(&place, val, 1, 120_000, p).map(|n| d.timeout_ms = n),
            "attempts" => number(&place, val, 0, 1_000, p).map(|n| {
                d.attempts = n;
                if n != 0 {
                    p.warn(&place, format!("gives up a notification after {n} attempt(s): a longer outage loses it; remove it (or set 0) to retry until delivered, bounded by max_age_s"));
                }
            }),
            "max_age_s" => number(&place, val, 0, 31_536_000, p).map(|n| d.max_age_s = n),
            "backoff_initial_ms" => {
                number(&place, val, 1, 3_600_000, p).map(|n| d.backoff_initial_ms = n)
            }
            "backoff_max_ms" => number(&place, val, 1, 3_600_000, p).map(|n| d.backoff_max_ms = n),
            "shutdown_flush_ms" => {
                number(&place, val, 0, 60_000, p).map(|n| d.shutdown_flush_ms = n)
            }
            "ca_file" => match val {
                Value::String(s) if !s.is_empty() => {
                    d.ca_file = Some(s.clone());
                    Some(())
                }
                other => {
                    p.error(
                        &place,
                        format!("must be a file path, not {}", type_name(other)),
                    );
                    None
                }
            },
            "signing_secret" => {
                d.signing_secret = parse_secret(&place, val, p);
                Some(())
            }
            "spool" => {
                d.spool = parse_spool(val, p);
                Some(())
            }
            _ => {
                p.error(&place, "unknown setting (expected connect_timeout_ms, timeout_ms, attempts, max_age_s, backoff_initial_ms, backoff_max_ms, shutdown_flush_ms, ca_file, signing_secret, spool)");
                None
            }
        };
        let _ = slot;
    }
    if d.backoff_max_ms < d.backoff_initial_ms {
        p.error(
            "delivery.backoff_max_ms",
            "must not be less than backoff_initial_ms",
        );
    }
    if d.connect_timeout_ms > d.timeout_ms {
        p.warn(
            "delivery.connect_timeout_ms",
            "is longer than timeout_ms, which bounds the whole request",
        );
    }
}

fn parse_device(v: &Value, d: &mut Device, p: &mut Problems) {
    let Value::Object(map): &Value = v else {
        p.error("device", format!("must be an object, not {}", type_name(v)));
        return;
    };
    let map: &Map<String, Value> = map;
    for (k, val) in map {
        let place = format!("device.{k}");
        match (k.as_str(), val) {
            ("interface", Value::String(s)) if valid_interface(s) => d.interface = Some(s.clone()),
            ("interface", _) => p.error(&place, BAD_INTERFACE),
            ("language", Value::String(s)) if s.len() <= 32 => d.language = Some(s.clone()),
            ("language", _) => p.error(&place, "must be a string of at most 32 bytes"),
            _ => p.error(&place, "unknown setting (expected interface, language)"),
        }
    }
}

/// The handset's identity and paths: `board/<model>/board.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub hardware_version: String,
    /// Literal `$program_version`, used when the file below cannot be read.
    #[serde(default)]
    pub program_version: String,
    /// A file holding the firmware version (e.g. `/system/build.prop`).
    #[serde(default)]
    pub program_version_file: Option<String>,
    /// The `key=value` line of that file to read; without it, the file's first line.
    #[serde(default)]
    pub program_version_key: Option<String>,
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    /// Default config file for `run` when `--config` is not given.
    #[serde(default)]
    pub config: Option<String>,
    /// Default socket path.
    #[serde(default)]
    pub socket: Option<String>,
    /// Defaults for the admin server (the command line wins). Never read from the config file,
    /// so the API cannot change who may use it.
    #[serde(default)]
    pub admin: Option<BoardAdmin>,
}

/// The board file's `"admin"` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardAdmin {
    /// `ADDR:PORT` to serve.
    #[serde(default)]
    pub listen: Option<String>,
    /// The credentials file `event-notify passwd` writes.
    #[serde(default)]
    pub credentials: Option<String>,
    /// Client addresses allowed: CIDR, single addresses, `192.168.1.*`; comma-separated.
    #[serde(default)]
    pub allow: Option<String>,
    /// Accept Basic over plain HTTP from other hosts than loopback.
    #[serde(default)]
    pub basic_anywhere: bool,
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

impl Board {
    /// Parses a board file. The interface is checked as the config's `device.interface` is (a
    /// bad one is refused with its place, `interface: ...`).
    pub fn from_json(text: &str) -> Result<Board, String> {
        let b: Board =
            serde_json::from_str(text).map_err(|e| format!("{}: {e}", syntax_place(&e)))?;
        match &b.interface {
            Some(i) if !valid_interface(i) => Err(format!("interface: {BAD_INTERFACE}")),
            _ => Ok(b),
        }
    }

    /// `$program_version` from the contents of `program_version_file`, if it was readable.
    pub fn program_version_from(&self, file_text: Option<&str>) -> String {
        let found = file_text.and_then(|t| match &self.program_version_key {
            Some(key) => t.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().to_string())
            }),
            None => t.lines().next().map(|l| l.trim().to_string()),
        });
        found
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| self.program_version.clone())
    }
}

/// What is said of an interface name [`valid_interface`] refuses (config and board file).
const BAD_INTERFACE: &str =
    "must be an interface name (1 to 15 characters, no '/', ':', space or control character)";

/// A name Linux can give an interface (its `dev_valid_name`): 1 to 15 bytes, not `.` or `..`, no
/// '/', ':' or whitespace. Control characters are refused too: the name is printed in `status`,
/// one line per figure, and goes to the kernel NUL-terminated.
fn valid_interface(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 16
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_uses_defaults() {
        let (c, w) =
            Config::from_json(r#"{"events": {"incoming_call": "10.0.0.1/in?r=$remote"}}"#).unwrap();
        assert!(w.is_empty());
        assert_eq!(c.delivery, Delivery::default());
        let e = c.event(Event::IncomingCall).unwrap();
        assert_eq!(e.method, Method::Get);
        assert!(c.event(Event::OutgoingCall).is_none());
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let text = r#"{"events": {"ringing": "h/x", "incoming_call": "ftp://h",
            "call_established": "h/x?a=${nope}", "establish_call": "h/y",
            "terminate_call": {"url": "h/x", "method": "PUT", "colour": 1}},
            "delivery": {"attempts": -1, "backoff_initial_ms": 10, "backoff_max_ms": 5},
            "device": {"interface": "this-name-is-too-long"}, "extra": 1}"#;
        let errs = Config::from_json(text).unwrap_err();
        let lines: Vec<String> = errs.iter().map(|p| p.to_string()).collect();
        let want = [
            "events.ringing: unknown event",
            "events.incoming_call.url: column 1: scheme",
            "events.call_established.url: column 7: unknown variable in",
            "is set twice",
            "events.terminate_call.method: \"PUT\" is not GET or POST",
            "events.terminate_call.colour: unknown field",
            "delivery.attempts: must be a whole number",
            "delivery.backoff_max_ms: must not be less",
            "device.interface:",
            "error: extra: unknown setting",
        ];
        for w in want {
            assert!(
                lines.iter().any(|l| l.contains(w)),
                "missing {w:?} in {lines:#?}"
            );
        }
    }

    #[test]
    fn interface_names_are_what_linux_accepts() {
        for ok in ["eth0", "wlan0", "br-lan", "lo", "enp0s31f6", "a.b"] {
            assert!(valid_interface(ok), "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "eth0/x",
            "eth0:1",
            "eth 0",
            "eth0\nrefused 9",
            "eth\u{0}",
            "0123456789abcdef",
        ] {
            assert!(!valid_interface(bad), "{bad:?}");
            let json = serde_json::to_string(bad).unwrap();
            let text = format!(r#"{{"events": {{}}, "device": {{"interface": {json}}}}}"#);
            let errs = Config::from_json(&text).unwrap_err();
            assert!(
                errs.iter()
                    .any(|p| p.to_string().contains("device.interface:")),
                "{bad:?}: {errs:?}"
            );
        }
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = Config::from_json("{\n\"events\": {,}}").unwrap_err();
        assert!(e[0].place.starts_with("line 2 column"), "{e:?}");
    }

    #[test]
    fn per_event_credentials_and_json_body() {
        let (c, _) = Config::from_json(
            r#"{"events": {"terminate_call": {"url": "https://crm.example/end", "method": "post",
                "body": "{\"id\":\"$call_id\"}", "content_type": "json", "username": "phone", "password": "s3cret"}}}"#,
        )
        .unwrap();
        let e = c.event(Event::TerminateCall).unwrap();
        assert_eq!(e.method, Method::Post);
        assert_eq!(e.body_encoding, Encoding::Json);
        assert_eq!(e.credentials.as_ref().unwrap().password.as_str(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn warnings_do_not_refuse() {
        let (_, w) = Config::from_json(r#"{"events": {"dnd_on": "h/x?a=$foo"}}"#).unwrap();
        assert!(w[0].warning && w[0].message.contains("$foo"), "{w:?}");
    }

    #[test]
    fn a_credential_header_is_not_quoted_in_a_warning() {
        let (_, w) = Config::from_json(
            r#"{"events": {"dnd_on": {"url": "h/x", "headers": {"X-Api-Key": "k$ey123", "X-Trace": "t$race9"}}}}"#,
        )
        .unwrap();
        let all = format!("{w:?}");
        assert_eq!(w.len(), 2, "{all}");
        assert!(!all.contains("ey123"), "a credential in a warning: {all}");
        assert!(all.contains("holds a credential"), "{all}");
        assert!(
            all.contains("$race9"),
            "an ordinary header is quoted: {all}"
        );
    }

    #[test]
    fn board_program_version() {
        let b = Board::from_json(r#"{"product": "GXV3370", "program_version": "1.0.1.28", "program_version_key": "ro.version"}"#).unwrap();
        assert_eq!(
            b.program_version_from(Some("a=b\nro.version = 1.0.3.5\n")),
            "1.0.3.5"
        );
        assert_eq!(b.program_version_from(None), "1.0.1.28");
        assert!(Board::from_json(r#"{"colour": 1}"#).is_err());
        assert_eq!(
            Board::from_json(r#"{"interface": "lo"}"#).map(|b| b.interface),
            Ok(Some("lo".to_string()))
        );
        for bad in [
            "",
            ".",
            "..",
            "eth0/x",
            "eth 0",
            "eth0\nx",
            "0123456789abcdef",
        ] {
            let json = serde_json::to_string(bad).unwrap();
            let e = Board::from_json(&format!(r#"{{"interface": {json}}}"#)).unwrap_err();
            assert!(
                e.starts_with("interface: must be an interface name"),
                "{bad:?}: {e}"
            );
        }
    }
}
