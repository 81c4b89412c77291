//! The JSON API and the CTI request, as functions from a [`Request`] to a [`Response`].
//! Authentication has been done by the caller ([`super::serve`]).
//!
//! The config file stays the one source of truth: every read parses it, every write builds the
//! new text, validates it with [`Config::from_json`] (what `check` and `run` use), writes it
//! atomically and asks the daemon to reload it.

use super::auth::{same, write_atomic};
use super::http::{form_pairs, percent_decode, Request, Response};
use super::Ctx;
use crate::core::config::{Config, Delivery, EventConfig, Problem};
use crate::core::event::Event;
use crate::core::outbox::Notification;
use crate::core::template::Encoding;
use crate::core::var::{Var, Vars};
use serde_json::{json, Map, Value};
use sha2::Digest as _;
use std::time::{Duration, Instant};

/// The longest a test send may take, whatever the delivery settings say.
pub const TEST_TIMEOUT_MS: u32 = 10_000;

/// Every route the server answers: (method, path pattern). A test compares it with
/// docs/openapi.json.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/app.css"),
    ("GET", "/app.js"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/login"),
    ("GET", "/api/v1/session"),
    ("POST", "/api/v1/logout"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/variables"),
    ("GET", "/api/v1/config"),
    ("PUT", "/api/v1/config"),
    ("GET", "/api/v1/events/{key}"),
    ("PUT", "/api/v1/events/{key}"),
    ("DELETE", "/api/v1/events/{key}"),
    ("POST", "/api/v1/events/{key}/preview"),
    ("POST", "/api/v1/events/{key}/test"),
    ("GET", "/api/v1/status"),
    ("POST", "/api/v1/import"),
    ("GET", "/dummy.htm"),
    ("POST", "/dummy.htm"),
];

/// Sample values for variables the caller did not give (preview and test).
const SAMPLES: &[(Var, &str)] = &[
    (Var::Local, "1001"),
    (Var::DisplayLocal, "Alice"),
    (Var::Remote, "1002"),
    (Var::DisplayRemote, "Bob"),
    (Var::CallId, "a84b4c76e66710"),
    (Var::ActiveUser, "1001"),
    (Var::ActiveHost, "pbx.example"),
    (Var::Duration, "42"),
    (Var::CallDirection, "incoming"),
    (Var::PhoneIp, "192.168.1.100"),
    (Var::Mac, "000b82000001"),
];

fn err(status: u16, code: &str, text: &str) -> Response {
    Response::error(status, code, text)
}

/// The config file's text ("" when there is none yet) and its ETag.
pub fn read_config(ctx: &Ctx) -> Result<(String, String), Response> {
    match std::fs::read_to_string(&ctx.config) {
        Ok(t) => {
            let e = etag(&t);
            Ok((t, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((String::new(), etag(""))),
        Err(e) => {
            log::error!("admin: cannot read {}: {e}", ctx.config.display());
            Err(err(500, "io", "cannot read the config file"))
        }
    }
}

pub fn etag(text: &str) -> String {
    format!(
        "\"{}\"",
        super::auth::hex(&sha2::Sha256::digest(text.as_bytes())[..16])
    )
}

fn root_of(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// One event as stored, passwords included (never sent out as is).
#[derive(Clone, Debug, Default, PartialEq)]
struct Raw {
    url: String,
    enabled: bool,
    method: String,
    body: String,
    content_type: String,
    username: String,
    password: String,
    /// Write-only, like the password.
    signing_secret: String,
    /// Extra headers, name -> value template, as in the file.
    headers: Map<String, Value>,
    /// Fields of the file this API does not know: kept as they are, never dropped.
    rest: Map<String, Value>,
}

/// What a credential's value is shown as (URL passwords, credential headers).
const MASK: &str = "****";

/// Whether a header's value is a credential by its name: the rule `expand` masks by.
fn header_is_secret(name: &str) -> bool {
    crate::cli::header_is_secret(name)
}

fn short_ct(ct: &str) -> &str {
    match ct.trim() {
        "" | "form" | "application/x-www-form-urlencoded" => "form",
        "json" | "application/json" => "json",
        "text" | "text/plain" => "text",
        other => other,
    }
}

impl Raw {
    fn from_value(v: Option<&Value>) -> Raw {
        let mut r = Raw {
            enabled: true,
            method: "GET".into(),
            content_type: "form".into(),
            ..Raw::default()
        };
        match v {
            Some(Value::String(s)) => r.url = s.clone(),
            Some(Value::Object(o)) => {
                let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                r.url = s("url");
                r.enabled = o.get("enabled").and_then(Value::as_bool).unwrap_or(true);
                if let Some(m) = o.get("method").and_then(Value::as_str) {
                    r.method = m.to_ascii_uppercase();
                }
                r.body = s("body");
                r.content_type = short_ct(&s("content_type")).to_string();
                r.username = s("username");
                r.password = s("password");
                r.signing_secret = s("signing_secret");
                for (k, v) in o {
                    match k.as_str() {
                        "url" | "enabled" | "method" | "body" | "content_type" | "username"
                        | "password" | "signing_secret" => {}
                        "headers" => match v {
                            Value::Object(h) => r.headers = h.clone(),
                            // Not an object: kept as it is for the validation to report.
                            other => {
                                r.rest.insert(k.clone(), other.clone());
                            }
                        },
                        _ => {
                            r.rest.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            _ => {}
        }
        r
    }

    /// Merges a client's (possibly partial) event object: absent fields keep their value; a
    /// password absent keeps it, `""` clears it; a URL whose password is `****` keeps the
    /// stored URL password.
    fn merge(&self, v: &Map<String, Value>) -> Result<Raw, String> {
        let mut r = self.clone();
        for (k, val) in v {
            let s = || -> Result<String, String> {
                match val {
                    Value::String(s) => Ok(s.clone()),
                    Value::Null => Ok(String::new()),
                    _ => Err(format!("{k} must be a string")),
                }
            };
            match k.as_str() {
                "url" => {
                    let new = s()?;
                    r.url = unmask_url(&new, &self.url);
                }
                "enabled" => r.enabled = val.as_bool().ok_or("enabled must be true or false")?,
                "method" => r.method = s()?.to_ascii_uppercase(),
                "body" => r.body = s()?,
                "content_type" => r.content_type = short_ct(&s()?).to_string(),
                "username" => r.username = s()?,
                "password" => r.password = s()?,
                "signing_secret" => r.signing_secret = s()?,
                "headers" => r.headers = merge_headers(val, &self.headers)?,
                // Read-only fields a client may echo back.
                "password_set" | "signing_secret_set" | "key" | "label" | "vars" | "aliases" => {}
                other => return Err(format!("unknown field {other}")),
            }
        }
        Ok(r)
    }

    /// The file's form: a plain string when only the URL is set.
    fn to_file(&self) -> Option<Value> {
        if self.url.trim().is_empty() {
            return None;
        }
        let plain = self.enabled
            && self.method == "GET"
            && self.body.is_empty()
            && self.content_type == "form"
            && self.username.is_empty()
            && self.password.is_empty()
            && self.signing_secret.is_empty()
            && self.headers.is_empty()
            && self.rest.is_empty();
        if plain {
            return Some(Value::String(self.url.clone()));
        }
        let mut o = Map::new();
        o.insert("url".into(), self.url.clone().into());
        if !self.enabled {
            o.insert("enabled".into(), false.into());
        }
        if self.method != "GET" {
            o.insert("method".into(), self.method.clone().into());
        }
        if !self.body.is_empty() {
            o.insert("body".into(), self.body.clone().into());
        }
        if self.content_type != "form" {
            o.insert("content_type".into(), self.content_type.clone().into());
        }
        if !self.username.is_empty() {
            o.insert("username".into(), self.username.clone().into());
        }
        if !self.password.is_empty() {
            o.insert("password".into(), self.password.clone().into());
        }
        if !self.headers.is_empty() {
            o.insert("headers".into(), Value::Object(self.headers.clone()));
        }
        if !self.signing_secret.is_empty() {
            o.insert("signing_secret".into(), self.signing_secret.clone().into());
        }
        for (k, v) in &self.rest {
            o.insert(k.clone(), v.clone());
        }
        Some(Value::Object(o))
    }

    /// What the API shows: no password or secret, ever.
    fn to_api(&self, e: Event) -> Value {
        let (url, url_pw) = mask_url(&self.url);
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let shown = if header_is_secret(k) && !v.is_null() {
                    Value::String(MASK.into())
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect();
        json!({
            "key": e.key(),
            "label": e.label(),
            "url": url,
            "enabled": self.enabled,
            "method": self.method,
            "body": self.body,
            "content_type": self.content_type,
            "username": self.username,
            "password_set": !self.password.is_empty() || url_pw,
            "signing_secret_set": !self.signing_secret.is_empty(),
            "headers": headers,
        })
    }
}

/// A client's `headers` object: the new list (a header left out is removed); a credential
/// header whose value is `****` keeps the stored value of the same name.
fn merge_headers(val: &Value, old: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let h = match val {
        Value::Null => return Ok(Map::new()),
        Value::Object(h) => h,
        _ => return Err("headers must be an object of name: value".into()),
    };
    let mut out = Map::new();
    for (name, v) in h {
        if v.as_str() == Some(MASK) && header_is_secret(name) {
            let stored = old
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone());
            match stored {
                Some(s) => {
                    out.insert(name.clone(), s);
                }
                None => {
                    return Err(format!(
                        "headers.{name}: {MASK} keeps a stored value, and there is none"
                    ))
                }
            }
        } else {
            out.insert(name.clone(), v.clone());
        }
    }
    Ok(out)
}

/// Where the userinfo of a URL is: (start, '@' index), if any.
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let at = url[start..end].rfind('@')? + start;
    Some((start, at))
}

/// The URL with the password of its userinfo replaced by `****`; and whether it had one.
pub fn mask_url(url: &str) -> (String, bool) {
    if let Some((start, at)) = userinfo(url) {
        if let Some(colon) = url[start..at].find(':') {
            let colon = start + colon;
            return (format!("{}:****{}", &url[..colon], &url[at..]), true);
        }
    }
    (url.to_string(), false)
}

/// A URL from a client whose password is `****` gets the stored URL's password back (same user).
fn unmask_url(new: &str, old: &str) -> String {
    let (Some((s1, a1)), Some((s2, a2))) = (userinfo(new), userinfo(old)) else {
        return new.to_string();
    };
    let (Some((u1, p1)), Some((u2, p2))) =
        (new[s1..a1].split_once(':'), old[s2..a2].split_once(':'))
    else {
        return new.to_string();
    };
    if p1 == "****" && u1 == u2 {
        format!("{}{u1}:{p2}{}", &new[..s1], &new[a1..])
    } else {
        new.to_string()
    }
}

/// The stored events, by canonical key (an alias in the file counts for its event).
fn stored_event(root: &Map<String, Value>, e: Event) -> Option<&Value> {
    root.get("events")
        .and_then(Value::as_object)?
        .iter()
        .find(|(k, _)| Event::from_name(k) == Some(e))
        .map(|(_, v)| v)
}

/// The delivery settings as the API shows them: the signing secret only as `signing_secret_set`.
fn delivery_json(d: &Delivery) -> Value {
    json!({
        "connect_timeout_ms": d.connect_timeout_ms,
        "timeout_ms": d.timeout_ms,
        "attempts": d.attempts,
        "max_age_s": d.max_age_s,
        "backoff_initial_ms": d.backoff_initial_ms,
        "backoff_max_ms": d.backoff_max_ms,
        "shutdown_flush_ms": d.shutdown_flush_ms,
        "ca_file": d.ca_file,
        "spool": d.spool.as_ref().map(|s| json!({"path": s.path, "max_bytes": s.max_bytes})),
        "signing_secret_set": d.signing_secret.is_some(),
    })
}

/// The defaults the page shows beside each delivery field (a spool has no default path).
fn delivery_defaults() -> Value {
    let mut v = delivery_json(&Delivery::default());
    v["spool"] = json!({"path": null, "max_bytes": crate::core::config::SPOOL_DEFAULT_MAX_BYTES});
    v
}

/// The file's `delivery` object after a client's: a field left out is kept (so nothing the
/// client does not show is dropped), `null` or `""` removes it (its default applies);
/// `signing_secret` is write-only (left out keeps, `""` clears); a spool without a path is none.
fn merge_delivery(old: Option<&Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut d = match old {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    for (k, v) in new {
        if k == "signing_secret_set" {
            continue;
        }
        let gone = match (k.as_str(), v) {
            (_, Value::Null) => true,
            (_, Value::String(s)) => s.is_empty(),
            ("spool", Value::Object(o)) => {
                matches!(o.get("path"), None | Some(Value::Null))
                    || o.get("path").and_then(Value::as_str) == Some("")
            }
            _ => false,
        };
        if gone {
            d.remove(k);
        } else if let ("spool", Value::Object(o)) = (k.as_str(), v) {
            // `max_bytes: null` is its default.
            let o: Map<String, Value> = o
                .iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect();
            d.insert(k.clone(), Value::Object(o));
        } else {
            d.insert(k.clone(), v.clone());
        }
    }
    d
}

/// The whole config as the API shows it.
fn config_view(text: &str) -> Value {
    let root = root_of(text);
    let mut events = Map::new();
    for e in Event::ALL {
        let mut v = Raw::from_value(stored_event(&root, e)).to_api(e);
        if let Value::Object(o) = &mut v {
            o.remove("key");
            o.remove("label");
        }
        events.insert(e.key().into(), v);
    }
    let parsed = crate::daemon::validate_config(if text.is_empty() {
        "{\"events\":{}}"
    } else {
        text
    });
    let delivery = match &parsed {
        Ok((c, _)) => c.delivery.clone(),
        Err(_) => Delivery::default(),
    };
    let device = root.get("device").cloned().unwrap_or_else(|| json!({}));
    let mut out = json!({
        "events": events,
        "delivery": delivery_json(&delivery),
        "delivery_defaults": delivery_defaults(),
        "device": device,
    });
    if let Err(problems) = &parsed {
        // A hand-edited file the daemon refused: say so, so the page does not pretend.
        out["problems"] = Value::Array(problems.iter().map(|p| problem_json(p, "")).collect());
    }
    out
}

/// A problem as the API reports it; `text` is the line `check` prints.
pub fn problem_json(p: &Problem, path: &str) -> Value {
    // A warning about a credential header's value names the `$word` it found in it: part of the
    // secret. Say where, not what.
    let secret_header = p
        .place
        .split_once(".headers.")
        .is_some_and(|(_, name)| header_is_secret(name));
    let masked;
    let p = if secret_header && p.message.contains("unknown variable") {
        let col = p.message.split(':').next().unwrap_or("");
        masked = Problem {
            message: format!("{col}: a $word in this credential header is not a known variable and is sent as typed (not shown)"),
            ..p.clone()
        };
        &masked
    } else {
        p
    };
    let (column, message) = match p.message.strip_prefix("column ") {
        Some(rest) => match rest.split_once(": ") {
            Some((n, m)) if n.parse::<u64>().is_ok() => (n.parse::<u64>().ok(), m.to_string()),
            _ => (None, p.message.clone()),
        },
        None => (None, p.message.clone()),
    };
    json!({
        "field": p.place,
        "column": column,
        "message": message,
        "severity": if p.warning { "warning" } else { "error" },
        "text": if path.is_empty() { p.to_string() } else { format!("{path}: {p}") },
    })
}

fn parse_json(req: &Request) -> Result<Value, Response> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| err(400, "bad_json", &format!("the body is not JSON: {e}")))
}

/// Checks `If-Match` against the current ETag.
fn precondition(req: &Request, current: &str) -> Result<(), Response> {
    match req.header("if-match") {
        None => Err(err(
            428,
            "precondition_required",
            "send If-Match with the ETag of the config you loaded",
        )),
        Some(m)
            if m.split(',')
                .any(|t| same(t.trim().as_bytes(), current.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => Err(err(
            412,
            "stale",
            "changed by someone else since you loaded it",
        )),
    }
}

/// Validates `root` as the new config, writes it atomically and waits for the daemon to reload
/// it. `Ok(etag)` once in force.
pub fn commit(ctx: &Ctx, root: &Map<String, Value>) -> Result<String, Response> {
    let text = match serde_json::to_string_pretty(&Value::Object(root.clone())) {
        Ok(t) => t + "\n",
        Err(_) => return Err(err(500, "internal", "cannot write the config as JSON")),
    };
    if let Err(problems) = crate::daemon::validate_config(&text) {
        let path = ctx.config.display().to_string();
        return Err(Response::json(
            422,
            &json!({
                "error": "the config is invalid; nothing was changed",
                "code": "invalid",
                "problems": problems.iter().map(|p| problem_json(p, &path)).collect::<Vec<_>>(),
            }),
        ));
    }
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&ctx.config).map_or(0o600, |m| m.permissions().mode() & 0o777)
    };
    if let Err(e) = write_atomic(&ctx.config, text.as_bytes(), mode) {
        log::error!("admin: cannot write {}: {e}", ctx.config.display());
        return Err(err(500, "io", "cannot write the config file"));
    }
    match &ctx.inbox {
        Some(inbox) => match inbox.reload() {
            Ok(()) => {}
            Err(e) => {
                log::error!("admin: the daemon refused the written config: {e}");
                return Err(Response::json(
                    500,
                    &json!({"error": format!("written, but the daemon did not take it: {e}"), "code": "not_in_force", "in_force": false}),
                ));
            }
        },
        None => return Err(err(500, "not_in_force", "no daemon to reload the config")),
    }
    log::info!("admin: config written and in force");
    Ok(etag(&text))
}

/// Resolves `{key}`: key, alias or label.
fn event_of(key: &str) -> Result<Event, Response> {
    let k = percent_decode(key, false).unwrap_or_default();
    Event::from_name(&k).ok_or_else(|| {
        err(
            404,
            "unknown_event",
            &format!("unknown event {k:?} (see GET /api/v1/events)"),
        )
    })
}

pub fn events_list() -> Response {
    Response::json(
        200,
        &Value::Array(
            Event::ALL
                .iter()
                .map(|e| json!({"key": e.key(), "label": e.label(), "aliases": e.aliases().collect::<Vec<_>>()}))
                .collect(),
        ),
    )
}

pub fn variables_list() -> Response {
    Response::json(
        200,
        &Value::Array(
            Var::ALL
                .iter()
                .map(|v| json!({"name": v.name(), "aliases": v.aliases().collect::<Vec<_>>(), "description": v.describe()}))
                .collect(),
        ),
    )
}

pub fn get_config(ctx: &Ctx) -> Response {
    match read_config(ctx) {
        Ok((text, tag)) => Response::json(200, &config_view(&text)).with("ETag", tag),
        Err(r) => r,
    }
}

/// Builds the new file root from a whole-config body.
fn root_from_view(body: &Value, old: &Map<String, Value>) -> Result<Map<String, Value>, Response> {
    let Value::Object(b) = body else {
        return Err(err(400, "bad_json", "the body must be a JSON object"));
    };
    // A whole config without `events` would turn every event off: a client that meant to change
    // only the delivery settings would lose the event table. Refused; `{}` says "all off".
    if !b.contains_key("events") {
        return Err(events_missing());
    }
    let mut root = Map::new();
    let mut events = Map::new();
    if let Some(ev) = b.get("events") {
        let Value::Object(ev) = ev else {
            return Err(err(400, "bad_json", "events must be an object"));
        };
        for (k, v) in ev {
            let Some(e) = Event::from_name(k) else {
                // Left for the validation to report with its place.
                events.insert(k.clone(), v.clone());
                continue;
            };
            let stored = Raw::from_value(stored_event(old, e));
            // Kept when left out: the password and signing secret (write-only), the headers and
            // fields this API does not know (a client that does not show them cannot drop them).
            let base = Raw {
                password: stored.password.clone(),
                signing_secret: stored.signing_secret.clone(),
                headers: stored.headers.clone(),
                rest: stored.rest.clone(),
                ..Raw::from_value(None)
            };
            let base = Raw {
                url: stored.url.clone(),
                ..base
            };
            let merged = match v {
                Value::Object(o) => {
                    // The whole event is given: fields left out take their defaults, except the
                    // password (kept) and a masked URL password (kept).
                    let mut r = base
                        .merge(o)
                        .map_err(|m| err(400, "bad_json", &format!("events.{k}: {m}")))?;
                    if !o.contains_key("url") {
                        r.url.clear();
                    }
                    r
                }
                Value::String(s) => Raw {
                    url: unmask_url(s, &stored.url),
                    ..base.clone()
                },
                Value::Null => Raw::from_value(None),
                _ => {
                    events.insert(k.clone(), v.clone());
                    continue;
                }
            };
            if let Some(fv) = merged.to_file() {
                events.insert(e.key().into(), fv);
            }
        }
    }
    root.insert("events".into(), Value::Object(events));
    for (k, v) in b {
        match k.as_str() {
            "events" | "delivery_defaults" | "problems" | "etag" => {}
            "delivery" => {
                if let Value::Object(o) = v {
                    let d = merge_delivery(old.get("delivery"), o);
                    if !d.is_empty() {
                        root.insert(k.clone(), Value::Object(d));
                    }
                } else {
                    root.insert(k.clone(), v.clone());
                }
            }
            "device" => {
                if let Value::Object(o) = v {
                    let kept: Map<String, Value> = o
                        .iter()
                        .filter(|(_, x)| !x.is_null() && x.as_str() != Some(""))
                        .map(|(k, x)| (k.clone(), x.clone()))
                        .collect();
                    if !kept.is_empty() {
                        root.insert(k.clone(), Value::Object(kept));
                    }
                } else {
                    root.insert(k.clone(), v.clone());
                }
            }
            _ => {
                root.insert(k.clone(), v.clone());
            }
        }
    }
    // Whatever the client left out entirely is kept as it is.
    for (k, v) in old {
        if !b.contains_key(k) && !root.contains_key(k) {
            root.insert(k.clone(), v.clone());
        }
    }
    Ok(root)
}

const EVENTS_MISSING: &str = "a whole config must have `events`; to change one event use /api/v1/events/KEY; to turn every event off send \"events\": {}";

/// The answer to a whole-config `PUT` without `events`: 422 `invalid`, the problem at `events`,
/// as an invalid config is answered.
fn events_missing() -> Response {
    let p = Problem {
        place: "events".into(),
        message: EVENTS_MISSING.into(),
        warning: false,
    };
    Response::json(
        422,
        &json!({
            "error": format!("{EVENTS_MISSING} (nothing was changed)"),
            "code": "invalid",
            "problems": [problem_json(&p, "")],
        }),
    )
}

pub fn put_config(ctx: &Ctx, req: &Request) -> Response {
    let _w = ctx.write_lock.lock();
    let (text, tag) = match read_config(ctx) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = precondition(req, &tag) {
        return r;
    }
    let body = match parse_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let root = match root_from_view(&body, &root_of(&text)) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match commit(ctx, &root) {
        Ok(tag) => Response::json(200, &json!({"etag": tag, "in_force": true})).with("ETag", tag),
        Err(r) => r,
    }
}

pub fn get_event(ctx: &Ctx, key: &str) -> Response {
    let e = match event_of(key) {
        Ok(e) => e,
        Err(r) => return r,
    };
    match read_config(ctx) {
        Ok((text, tag)) => Response::json(
            200,
            &Raw::from_value(stored_event(&root_of(&text), e)).to_api(e),
        )
        .with("ETag", tag),
        Err(r) => r,
    }
}

/// Sets one event in `root` (under its canonical key; any alias spelling goes).
fn set_event(root: &mut Map<String, Value>, e: Event, raw: &Raw) {
    let events = root.entry("events").or_insert_with(|| json!({}));
    if !events.is_object() {
        *events = json!({});
    }
    if let Value::Object(m) = events {
        m.retain(|k, _| Event::from_name(k) != Some(e));
        if let Some(v) = raw.to_file() {
            m.insert(e.key().into(), v);
        }
    }
}

/// PUT (partial object) or DELETE of one event.
pub fn write_event(ctx: &Ctx, req: &Request, key: &str, delete: bool) -> Response {
    let e = match event_of(key) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let _w = ctx.write_lock.lock();
    let (text, tag) = match read_config(ctx) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = precondition(req, &tag) {
        return r;
    }
    let mut root = root_of(&text);
    let old = Raw::from_value(stored_event(&root, e));
    let new = if delete {
        Raw {
            url: String::new(),
            ..old
        }
    } else {
        let body = match parse_json(req) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return err(400, "bad_json", "the body must be an event object"),
            Err(r) => return r,
        };
        match old.merge(&body) {
            Ok(r) => r,
            Err(m) => return err(400, "bad_json", &m),
        }
    };
    set_event(&mut root, e, &new);
    match commit(ctx, &root) {
        Ok(tag) if delete => {
            Response::json(200, &json!({"etag": tag, "in_force": true})).with("ETag", tag)
        }
        Ok(tag) => Response::json(
            200,
            &json!({"etag": tag, "in_force": true, "event": new.to_api(e)}),
        )
        .with("ETag", tag),
        Err(r) => r,
    }
}

/// The event to preview or test: the stored one, with an optional (unsaved) object merged in.
/// `Err` carries the problems as `check` reports them.
fn candidate(
    ctx: &Ctx,
    e: Event,
    edit: Option<&Map<String, Value>>,
) -> Result<(Option<EventConfig>, Vec<Value>, Config), Response> {
    let (text, _) = read_config(ctx)?;
    let root = root_of(&text);
    let old = Raw::from_value(stored_event(&root, e));
    let raw = match edit {
        Some(o) => old.merge(o).map_err(|m| err(400, "bad_json", &m))?,
        None => old,
    };
    let live = crate::daemon::validate_config(&text)
        .map(|(c, _)| c)
        .unwrap_or_default();
    let mut one = Map::new();
    if let Some(v) = raw.to_file() {
        one.insert(e.key().into(), v);
    }
    let doc = json!({"events": one}).to_string();
    let path = ctx.config.display().to_string();
    match crate::daemon::validate_config(&doc) {
        Ok((c, warnings)) => Ok((
            c.events[e.index()].clone(),
            warnings.iter().map(|p| problem_json(p, &path)).collect(),
            live,
        )),
        Err(problems) => Ok((
            None,
            problems.iter().map(|p| problem_json(p, &path)).collect(),
            live,
        )),
    }
}

/// The variables for a preview or a test: device values, then samples, then the caller's.
fn vars_for(ctx: &Ctx, live: &Config, e: Event, given: Option<&Value>) -> Result<Vars, Response> {
    let mut v = crate::daemon::Device::new(&ctx.board, live).vars();
    for (var, sample) in SAMPLES {
        if v.get(*var).is_empty() {
            v.set(*var, sample);
        }
    }
    v.set(Var::Event, e.key());
    v.set_u64(Var::Timestamp, crate::daemon::now().unix_s);
    if !e.is_call_event() {
        v.clear(Var::Duration);
    }
    if let Some(Value::Object(m)) = given {
        for (k, val) in m {
            let Some(var) = Var::from_name(k.trim_start_matches('$')) else {
                return Err(err(
                    400,
                    "unknown_variable",
                    &format!("unknown variable {k:?} (see GET /api/v1/variables)"),
                ));
            };
            let s = match val {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(err(400, "bad_json", &format!("vars.{k} must be a string"))),
            };
            v.set(var, &s);
        }
    }
    Ok(v)
}

/// Expands `ec` into the notification it would send.
fn expand(
    e: Event,
    ec: &EventConfig,
    vars: &Vars,
    delivery: &Delivery,
) -> Result<Notification, &'static str> {
    let mut n = Notification::empty();
    n.event = e;
    n.method = ec.method;
    n.credentials.clone_from(&ec.credentials);
    n.max_attempts = 1;
    n.content_type = if ec.body.is_some() {
        ec.content_type
    } else {
        ""
    };
    // Numbered like a real one (an example id: sequence 0), signed and with the extra headers
    // as the daemon sends it.
    n.id = crate::core::id::delivery_id(vars.get(Var::Mac), 0, 0);
    let mut vars = vars.clone();
    vars.set(Var::DeliveryId, &n.id);
    let vars = &vars;
    n.secret = ec
        .signing_secret
        .clone()
        .or_else(|| delivery.signing_secret.clone());
    for (name, t) in &ec.headers {
        use std::fmt::Write as _;
        let ok = write!(n.headers, "{name}: ").is_ok()
            && t.write_to(vars, Encoding::Percent, &mut n.headers).is_ok()
            && n.headers.push('\n').is_ok();
        if !ok {
            return Err("the expanded headers are too long: they would not be sent");
        }
    }
    ec.url
        .expand(vars, Encoding::Percent, &mut n.url)
        .map_err(|_| "the expanded URL is too long: it would not be sent")?;
    if let Some(b) = &ec.body {
        b.expand(vars, ec.body_encoding, &mut n.body)
            .map_err(|_| "the expanded body is too long: it would not be sent")?;
    }
    Ok(n)
}

fn edit_of(body: &Value, key: &str) -> Option<Map<String, Value>> {
    match body.get(key) {
        Some(Value::Object(o)) => Some(o.clone()),
        _ => None,
    }
}

pub fn preview(ctx: &Ctx, req: &Request, key: &str) -> Response {
    let e = match event_of(key) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let body = match parse_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // The body is the event object itself (plus "vars").
    let mut edit = body.as_object().cloned().unwrap_or_default();
    let given = edit.remove("vars");
    let (ec, problems, live) = match candidate(ctx, e, Some(&edit)) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let vars = match vars_for(ctx, &live, e, given.as_ref()) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let request = match &ec {
        Some(ec) => match expand(e, ec, &vars, &live.delivery) {
            Ok(n) => request_json(&n),
            Err(m) => {
                let mut problems = problems.clone();
                problems.push(json!({"field": format!("events.{}.url", e.key()), "column": null, "message": m, "severity": "error", "text": m}));
                return Response::json(200, &json!({"problems": problems, "request": null}));
            }
        },
        None => Value::Null,
    };
    Response::json(200, &json!({"problems": problems, "request": request}))
}

fn request_json(n: &Notification) -> Value {
    let mut headers = Vec::new();
    if let Some(c) = &n.credentials {
        let _ = c;
        headers.push(json!(["Authorization", "Basic ****"]));
    }
    if !n.content_type.is_empty() {
        headers.push(json!(["Content-Type", n.content_type]));
    }
    headers.push(json!([crate::sign::ID_HEADER, n.id.as_str()]));
    headers.push(json!([crate::sign::IDEMPOTENCY_HEADER, n.id.as_str()]));
    for line in n.headers.lines() {
        let (name, value) = line.split_once(": ").unwrap_or((line, ""));
        let shown = if header_is_secret(name) { MASK } else { value };
        headers.push(json!([name, shown]));
    }
    if n.secret.is_some() {
        headers.push(json!([
            crate::sign::SIGNATURE_HEADER,
            "t=<time sent>,v1=<HMAC-SHA256> (secret not shown)"
        ]));
    }
    json!({
        "line": format!("{} {}", n.method.as_str(), n.url),
        "headers": headers,
        "body": n.body.as_str(),
    })
}

pub fn test_send(ctx: &Ctx, req: &Request, key: &str) -> Response {
    let e = match event_of(key) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let body = match parse_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let edit = edit_of(&body, "event");
    let (ec, problems, live) = match candidate(ctx, e, edit.as_ref()) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(ec) = ec else {
        let msg = if problems.is_empty() {
            "the event has no URL: nothing to send"
        } else {
            "the event is invalid"
        };
        return Response::json(
            422,
            &json!({"error": msg, "code": "invalid", "problems": problems}),
        );
    };
    let vars = match vars_for(ctx, &live, e, body.get("vars")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let n = match expand(e, &ec, &vars, &live.delivery) {
        Ok(n) => n,
        Err(m) => {
            return Response::json(
                422,
                &json!({"error": m, "code": "invalid", "problems": problems}),
            )
        }
    };
    let mut d = live.delivery.clone();
    d.timeout_ms = d.timeout_ms.min(TEST_TIMEOUT_MS);
    d.connect_timeout_ms = d.connect_timeout_ms.min(d.timeout_ms);
    let sender = match crate::daemon::deliver::Sender::new(&d) {
        Ok(s) => s,
        Err(e) => return err(500, "delivery", &e.to_string()),
    };
    let line = format!("{} {}", n.method.as_str(), n.url);
    let t0 = Instant::now();
    let (outcome, location) = sender.send(&n);
    let ms = t0.elapsed().min(Duration::from_secs(3600)).as_millis() as u64;
    use crate::core::engine::{Failure, Outcome};
    let v = match outcome {
        Outcome::Delivered(code) => {
            json!({"ok": true, "request_line": line, "status": code, "elapsed_ms": ms})
        }
        Outcome::Failed {
            why: Failure::Status(code),
            ..
        } => {
            json!({"ok": false, "request_line": line, "status": code, "elapsed_ms": ms})
        }
        Outcome::Failed {
            why: Failure::Redirect(code),
            ..
        } => {
            json!({"ok": false, "request_line": line, "status": code, "result": "redirect",
                   "error": "redirect: not followed; correct the URL", "location": location, "elapsed_ms": ms})
        }
        Outcome::Failed { why, .. } => {
            let text = match why {
                Failure::Connect => "connection refused or unreachable".to_string(),
                Failure::Timeout => "timed out".to_string(),
                Failure::Tls => "TLS handshake failed".to_string(),
                other => other.to_string(),
            };
            json!({"ok": false, "request_line": line, "error": text, "result": why.to_string(), "elapsed_ms": ms})
        }
    };
    log::info!("admin: test send of {e}: {}", v["ok"]);
    Response::json(200, &v)
}

pub fn status(ctx: &Ctx) -> Response {
    use crate::core::engine::{Failure, Outcome};
    let Some(s) = ctx.inbox.as_ref().and_then(|i| i.snapshot()) else {
        return err(503, "stopped", "the daemon is not running");
    };
    let unix = crate::daemon::now().unix_s;
    let c = &s.counters;
    let events: Vec<Value> = Event::ALL
        .iter()
        .map(|e| {
            let st = &s.events[e.index()];
            let last = st.last.map(|l| {
                let (result, status) = match l.outcome {
                    Outcome::Delivered(code) => (code.to_string(), Some(code)),
                    Outcome::Failed { why: Failure::Redirect(code), .. } => ("redirect".to_string(), Some(code)),
                    Outcome::Failed { why: Failure::Status(code), .. } => (code.to_string(), Some(code)),
                    Outcome::Failed { why, .. } => (why.to_string(), None),
                };
                let location = if result == "redirect" { s.locations[e.index()].clone() } else { None };
                json!({"result": result, "status": status, "attempt": l.attempt, "at": l.at_unix,
                       "ago_s": unix.saturating_sub(l.at_unix), "retry_in_s": null, "location": location})
            });
            json!({
                "key": e.key(),
                "state": s.states[e.index()],
                "counters": {"derived": st.derived, "queued": st.queued, "delivered": st.delivered,
                             "retried": st.retried, "failed": st.failed, "dropped": st.dropped},
                "last": last,
            })
        })
        .collect();
    let (lock, sess) = ctx.auth_counts();
    Response::json(
        200,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": s.uptime_s,
            "counters": {
                "messages": c.messages, "events": c.events, "queued": c.queued, "delivered": c.delivered,
                "retried": c.retried, "failed": c.failed, "dropped": c.dropped, "pending": c.pending,
                "in_flight": c.in_flight, "not_configured": c.not_configured, "too_long": c.too_long,
                "duplicates": c.duplicates, "unknown_call": c.unknown_call, "call_table_full": c.call_table_full,
                "refused": c.refused, "reloads": c.reloads, "reload_errors": c.reload_errors,
            },
            "admin": {"failed_logins": lock.0, "lockouts": lock.1, "locked_addresses": lock.2, "sessions": sess,
                      "refused_writes": ctx.refused_writes()},
            "events": events,
        }),
    )
}

/// `POST /api/v1/import[?from=yealink|snom|grandstream]`: another vendor's provisioning file, as
/// a provisioning server has it, merged into the config in force (everything but the imported
/// events kept, passwords included) and written like any other change. The report says what did
/// not carry over; it never holds a value of the file.
#[cfg(feature = "import")]
pub fn import(ctx: &Ctx, req: &Request) -> Response {
    let mut from = None;
    for (k, v) in form_pairs(req.query()).unwrap_or_default() {
        if k == "from" {
            match crate::import::Vendor::from_name(&v) {
                Some(vendor) => from = Some(vendor),
                None => {
                    return err(
                        400,
                        "bad_vendor",
                        "from= must be yealink, snom or grandstream",
                    )
                }
            }
        }
    }
    let Ok(file) = std::str::from_utf8(&req.body) else {
        return err(400, "not_utf8", "the file is not UTF-8 text");
    };
    let _w = ctx.write_lock.lock();
    let (text, tag) = match read_config(ctx) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = precondition(req, &tag) {
        return r;
    }
    let base = Value::Object(root_of(&text));
    let imported = match crate::import::import(file, from, Some(&base)) {
        Ok(i) => i,
        Err(e) => {
            let problems = match &e {
                crate::import::ImportError::Base(p) | crate::import::ImportError::Invalid(p) => {
                    let path = ctx.config.display().to_string();
                    p.iter().map(|p| problem_json(p, &path)).collect()
                }
                _ => Vec::new(),
            };
            return Response::json(
                422,
                &json!({"error": e.to_string(), "code": "import_refused", "problems": problems}),
            );
        }
    };
    let root = root_of(&imported.config_json);
    let report: Vec<Value> = imported.report.iter().map(|f| f.to_json()).collect();
    match commit(ctx, &root) {
        Ok(tag) => Response::json(
            200,
            &json!({"etag": tag, "in_force": true, "vendor": imported.vendor.to_string(),
                    "events": imported.events, "off": imported.off, "report": report}),
        )
        .with("ETag", tag),
        Err(r) => r,
    }
}

/// A build without the importer (a handset's firmware build may leave it out: docs/FIRMWARE.md)
/// answers `501` and says where to convert the file.
#[cfg(not(feature = "import"))]
pub fn import(_ctx: &Ctx, _req: &Request) -> Response {
    err(
        501,
        "not_in_this_build",
        "this build has no importer (cargo feature \"import\"): convert the file on a PC with \
         `event-notify import FILE --merge CONFIG` and PUT the config",
    )
}

/// The Snom-style request of CTI drivers: `/dummy.htm?settings=save&action_incoming_url=...`.
/// All settings are applied in one write, or none.
pub fn cti(ctx: &Ctx, req: &Request) -> Response {
    let mut pairs = match form_pairs(req.query()) {
        Some(p) => p,
        None => return Response::text(400, "malformed query"),
    };
    if req.method == "POST" {
        let body = std::str::from_utf8(&req.body).unwrap_or("\u{fffd}");
        match form_pairs(body) {
            Some(p) => pairs.extend(p),
            None => return Response::text(400, "malformed form body"),
        }
    }
    let _w = ctx.write_lock.lock();
    let (text, _) = match read_config(ctx) {
        Ok(x) => x,
        Err(_) => return Response::text(500, "cannot read the config"),
    };
    let mut root = root_of(&text);
    let mut applied = Vec::new();
    for (k, v) in &pairs {
        match k.as_str() {
            "settings" | "store_settings" => continue,
            _ => {}
        }
        let e = match Event::from_name(k) {
            Some(e) if k.starts_with("action_") => e,
            _ => {
                return Response::text(
                    400,
                    &format!("refused setting {k}: not an action URL setting of this phone"),
                )
            }
        };
        let old = Raw::from_value(stored_event(&root, e));
        let new = Raw {
            url: v.clone(),
            enabled: true,
            ..old
        };
        set_event(&mut root, e, &new);
        applied.push((k.clone(), e));
    }
    if applied.is_empty() {
        return Response::text(200, "OK");
    }
    match commit(ctx, &root) {
        Ok(_) => {
            log::info!("admin: CTI request set {} action URL(s)", applied.len());
            Response::text(200, "OK")
        }
        Err(r) if r.status == 422 => {
            // Name the setting behind each problem, in the driver's own spelling.
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let mut lines = Vec::new();
            for p in v["problems"].as_array().into_iter().flatten() {
                if p["severity"] != "error" {
                    continue;
                }
                let field = p["field"].as_str().unwrap_or("");
                let name = applied
                    .iter()
                    .find(|(_, e)| field.starts_with(&format!("events.{}", e.key())))
                    .map_or(field, |(k, _)| k.as_str());
                let col = p["column"]
                    .as_u64()
                    .map(|c| format!("column {c}: "))
                    .unwrap_or_default();
                lines.push(format!(
                    "refused setting {name}: {col}{}",
                    p["message"].as_str().unwrap_or("")
                ));
            }
            if lines.is_empty() {
                lines.push("refused: the config would be invalid".into());
            }
            Response::text(400, &lines.join("\n"))
        }
        Err(_) => Response::text(500, "could not apply the settings"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_unmasks_url_passwords() {
        assert_eq!(
            mask_url("http://u:secret@h/x?a=b@c"),
            ("http://u:****@h/x?a=b@c".into(), true)
        );
        assert_eq!(
            mask_url("h:8080/x?a=u:p@q"),
            ("h:8080/x?a=u:p@q".into(), false)
        );
        assert_eq!(mask_url("u@h/x"), ("u@h/x".into(), false));
        assert_eq!(
            unmask_url("http://u:****@h/y", "http://u:secret@h/x"),
            "http://u:secret@h/y"
        );
        assert_eq!(
            unmask_url("http://v:****@h/y", "http://u:secret@h/x"),
            "http://v:****@h/y"
        );
    }

    #[test]
    fn view_never_holds_a_password() {
        let text = r#"{"events":{"call_established":{"url":"http://h/x","password":"pw1secret","username":"u"},
                       "incoming_call":"http://a:pw2secret@h/in"}}"#;
        let v = config_view(text);
        let s = v.to_string();
        assert!(!s.contains("pw1secret") && !s.contains("pw2secret"), "{s}");
        assert_eq!(v["events"]["establish_call"]["password_set"], true);
        assert_eq!(v["events"]["incoming_call"]["password_set"], true);
        assert_eq!(v["events"]["dnd_on"]["url"], "");
        assert_eq!(v["events"].as_object().unwrap().len(), 20);
        assert_eq!(v["delivery"]["attempts"], Delivery::default().attempts);
    }

    #[test]
    fn whole_config_put_keeps_passwords_unless_cleared() {
        let old = root_of(
            r#"{"events":{"call_established":{"url":"http://h/x","password":"pw1","username":"u"},
                                       "incoming_call":"http://a:pw2@h/in"}}"#,
        );
        let body = config_view(&Value::Object(old.clone()).to_string());
        let root = root_from_view(&body, &old).unwrap();
        let t = Value::Object(root.clone()).to_string();
        assert!(t.contains("pw1") && t.contains("a:pw2@"), "{t}");
        let mut body2 = body.clone();
        body2["events"]["establish_call"]["password"] = json!("");
        let t = Value::Object(root_from_view(&body2, &old).unwrap()).to_string();
        assert!(!t.contains("pw1"), "{t}");
        assert!(crate::daemon::validate_config(&t).is_ok(), "{t}");
    }

    #[test]
    fn new_settings_survive_a_round_trip_and_secrets_never_show() {
        let text = r#"{"events":{"incoming_call":{"url":"http://h/in","signing_secret":"ev-sec-1",
                         "headers":{"X-Api-Key":"key-sec-2","X-Site":"lab $mac"}}},
                       "delivery":{"max_age_s":600,"spool":"/data/en.spool","signing_secret":"del-sec-3"}}"#;
        let old = root_of(text);
        let v = config_view(text);
        let s = v.to_string();
        for sec in ["ev-sec-1", "key-sec-2", "del-sec-3"] {
            assert!(!s.contains(sec), "{s}");
        }
        let ev = &v["events"]["incoming_call"];
        assert_eq!(ev["signing_secret_set"], true);
        assert_eq!(ev["headers"]["X-Api-Key"], "****");
        assert_eq!(ev["headers"]["X-Site"], "lab $mac");
        assert_eq!(v["delivery"]["max_age_s"], 600);
        assert_eq!(v["delivery"]["spool"]["path"], "/data/en.spool");
        assert_eq!(v["delivery"]["signing_secret_set"], true);
        assert_eq!(
            v["delivery_defaults"]["max_age_s"],
            Delivery::default().max_age_s
        );
        // What GET showed, written back, keeps all of it.
        let t = Value::Object(root_from_view(&v, &old).unwrap()).to_string();
        for sec in [
            "ev-sec-1",
            "key-sec-2",
            "del-sec-3",
            "lab $mac",
            "\"max_age_s\":600",
            "/data/en.spool",
        ] {
            assert!(t.contains(sec), "{sec} lost: {t}");
        }
        let (c, _) = crate::daemon::validate_config(&t).unwrap();
        assert_eq!(c.delivery.max_age_s, 600);
        // "" clears a secret; a header left out is removed; a new value replaces.
        let mut b = v.clone();
        b["events"]["incoming_call"]["signing_secret"] = json!("");
        b["events"]["incoming_call"]["headers"] = json!({"X-Api-Key": "new-key"});
        b["delivery"]["signing_secret"] = json!("");
        b["delivery"]["spool"] = Value::Null;
        let t = Value::Object(root_from_view(&b, &old).unwrap()).to_string();
        assert!(
            !t.contains("ev-sec-1") && !t.contains("del-sec-3") && !t.contains("X-Site"),
            "{t}"
        );
        assert!(t.contains("new-key") && !t.contains("spool"), "{t}");
        // **** for a header that has no stored value is refused, not sent as is.
        let stored = Raw::from_value(stored_event(&old, Event::IncomingCall));
        let edit = json!({"headers": {"Authorization": "****"}});
        assert!(stored.merge(edit.as_object().unwrap()).is_err());
        // A partial edit (PUT of one event, the CTI request) keeps everything else.
        let r = stored
            .merge(json!({"url": "http://h/new"}).as_object().unwrap())
            .unwrap();
        let f = r.to_file().unwrap().to_string();
        assert!(f.contains("ev-sec-1") && f.contains("key-sec-2"), "{f}");
    }

    #[test]
    fn a_warning_about_a_credential_header_does_not_quote_its_value() {
        let (_, warnings) = crate::daemon::validate_config(
            r#"{"events":{"incoming_call":{"url":"h/x","headers":{"X-Token":"Bearer $tok3nS3cret","X-Site":"$s1te"}}}}"#,
        )
        .unwrap();
        let v: Vec<Value> = warnings
            .iter()
            .map(|p| problem_json(p, "/c.json"))
            .collect();
        let s = Value::Array(v.clone()).to_string();
        assert!(!s.contains("tok3nS3cret"), "{s}");
        assert!(s.contains("s1te"), "a plain header's word is named: {s}");
        assert!(
            v.iter()
                .any(|p| p["column"] == 8 && p["field"] == "events.incoming_call.headers.X-Token"),
            "{s}"
        );
    }

    #[test]
    fn problems_carry_column_and_check_text() {
        let probs =
            crate::daemon::validate_config(r#"{"events":{"incoming_call":"h/x?a=${remote"}}"#)
                .unwrap_err();
        let p = problem_json(&probs[0], "/etc/en.json");
        assert_eq!(p["field"], "events.incoming_call.url");
        assert!(p["column"].as_u64().is_some(), "{p}");
        assert_eq!(p["text"], format!("/etc/en.json: {}", probs[0]));
    }
}
