//! Who may use the admin server: the credentials file, HTTP Digest (RFC 7616) and Basic, the
//! client allow-list, the lockout table and the browser sessions.
//!
//! Everything here is pure (no sockets): the caller passes the clock in (`now_s`, monotonic
//! seconds) and random bytes come from [`random_bytes`].

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::Path;

/// The Digest realm. Fixed, because the HA1 values in the credentials file depend on it.
pub const REALM: &str = "event-notify";
/// PBKDF2-HMAC-SHA256 rounds for a new credentials file.
pub const PBKDF2_ROUNDS: u32 = 60_000;
/// A Digest nonce is fresh this long; an authentic older one is answered `stale=true`.
pub const NONCE_TTL_S: u64 = 300;
/// Addresses remembered by the lockout table; when full, the entry whose lock ends first goes.
pub const LOCKOUT_CAP: usize = 64;
/// Failed logins from one address before it is locked out.
pub const LOCKOUT_AFTER: u32 = 3;
/// Failed logins from one IPv6 /64 network (its addresses together) before the whole network is
/// locked out: a host given a /64 can take a new address for each guess, and a home LAN shares
/// one /64, so one guessing host must not lock its neighbours out at its third guess.
pub const LOCKOUT_NET_AFTER: u32 = 12;
/// First lock; doubles with each further failure up to [`LOCKOUT_MAX_S`].
pub const LOCKOUT_S: u64 = 60;
pub const LOCKOUT_MAX_S: u64 = 3600;
/// Browser sessions at once; when full, the least recently used one is ended.
pub const SESSION_CAP: usize = 8;
/// A session unused this long is ended.
pub const SESSION_IDLE_S: u64 = 900;
/// Entries of an allow-list.
pub const MAX_ALLOW: usize = 32;
/// Longest user name and password accepted.
pub const CRED_FIELD_CAP: usize = 128;

/// Random bytes from the kernel.
pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn md5_hex(s: &str) -> String {
    hex(&md5::Md5::digest(s.as_bytes()))
}

/// Compares without an early exit, so timing tells nothing about where secrets differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin credentials file: one user, a salted slow hash, and the Digest HA1 values.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    rounds: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
    /// H(user:realm:password) for SHA-256 and MD5: password-equivalent for Digest.
    ha1_sha256: String,
    ha1_md5: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:***)", self.user)
    }
}

const FILE_MAGIC: &str = "event-notify-admin 1";

impl Credentials {
    /// New credentials with a fresh salt.
    pub fn new(user: &str, password: &str, rounds: u32) -> io::Result<Credentials> {
        let salt = random_bytes::<16>()?.to_vec();
        let mut hash = vec![0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, rounds, &mut hash);
        Ok(Credentials {
            user: user.to_string(),
            rounds,
            salt,
            hash,
            ha1_sha256: sha256_hex(&format!("{user}:{REALM}:{password}")),
            ha1_md5: md5_hex(&format!("{user}:{REALM}:{password}")),
        })
    }

    pub fn to_text(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(
            "{FILE_MAGIC}\nuser {}\npbkdf2-sha256 {} {} {}\nrealm {REALM}\nha1-sha256 {}\nha1-md5 {}\n",
            self.user,
            self.rounds,
            b64.encode(&self.salt),
            b64.encode(&self.hash),
            self.ha1_sha256,
            self.ha1_md5
        )
    }

    pub fn parse(text: &str) -> Result<Credentials, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut lines = text.lines();
        if lines.next() != Some(FILE_MAGIC) {
            return Err(format!(
                "not an admin credentials file (first line is not \"{FILE_MAGIC}\")"
            ));
        }
        let mut c = Credentials {
            user: String::new(),
            rounds: 0,
            salt: Vec::new(),
            hash: Vec::new(),
            ha1_sha256: String::new(),
            ha1_md5: String::new(),
        };
        for (i, line) in lines.enumerate() {
            let bad = || format!("line {}: malformed", i + 2);
            let (k, v) = line.split_once(' ').ok_or_else(bad)?;
            match k {
                "user" => c.user = v.to_string(),
                "pbkdf2-sha256" => {
                    let mut it = v.split(' ');
                    c.rounds = it.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
                    c.salt = it.next().and_then(|s| b64.decode(s).ok()).ok_or_else(bad)?;
                    c.hash = it.next().and_then(|s| b64.decode(s).ok()).ok_or_else(bad)?;
                }
                "realm" if v == REALM => {}
                "realm" => {
                    return Err(format!(
                        "line {}: realm is not {REALM}: run passwd again",
                        i + 2
                    ))
                }
                "ha1-sha256" => c.ha1_sha256 = v.to_string(),
                "ha1-md5" => c.ha1_md5 = v.to_string(),
                _ => return Err(format!("line {}: unknown field {k}", i + 2)),
            }
        }
        if c.user.is_empty()
            || c.rounds == 0
            || c.hash.len() != 32
            || c.ha1_sha256.len() != 64
            || c.ha1_md5.len() != 32
        {
            return Err("incomplete: run `event-notify passwd` again".into());
        }
        Ok(c)
    }

    /// Reads the file; refuses one that others may read.
    pub fn load(path: &Path) -> Result<Credentials, String> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "{}: mode {:o} lets others read it; chmod 600 it",
                path.display(),
                meta.mode() & 0o777
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Credentials::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the file with mode 0600 (temp file, fsync, rename).
    pub fn store(&self, path: &Path) -> io::Result<()> {
        write_atomic(path, self.to_text().as_bytes(), 0o600)
    }

    /// The slow check (Basic and the login form).
    pub fn verify_password(&self, user: &str, password: &str) -> bool {
        let mut h = vec![0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &self.salt, self.rounds, &mut h);
        same(&h, &self.hash) & same(user.as_bytes(), self.user.as_bytes())
    }
}

/// Writes `data` to a temporary file beside `path`, syncs it, renames it over `path` and syncs
/// the folder: a crash leaves the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Digest algorithms offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }
    fn h(self, s: &str) -> String {
        match self {
            Algorithm::Sha256 => sha256_hex(s),
            Algorithm::Md5 => md5_hex(s),
        }
    }
}

/// The server's secret for nonces, made at start.
pub struct NonceKey {
    key: [u8; 32],
    /// Makes every nonce unique, even two made in the same second (their counts are tracked
    /// per nonce: two clients must not share one).
    serial: std::sync::atomic::AtomicU64,
}

impl NonceKey {
    pub fn new() -> io::Result<NonceKey> {
        Ok(NonceKey {
            key: random_bytes()?,
            serial: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn tag(&self, t: u64, serial: u64) -> String {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        m.update(&t.to_be_bytes());
        m.update(&serial.to_be_bytes());
        hex(&m.finalize().into_bytes()[..16])
    }

    /// A MAC of `data` under this key (to remember a verified Basic header without keeping it).
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return [0; 32];
        };
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// A nonce: the time it was made, a serial number, and a MAC of both.
    pub fn nonce(&self, now_s: u64) -> String {
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{now_s:x}-{n:x}-{}", self.tag(now_s, n))
    }

    /// `Some(fresh)` for a nonce this server made; `None` for a forged one.
    pub fn check(&self, nonce: &str, now_s: u64) -> Option<bool> {
        let mut it = nonce.splitn(3, '-');
        let t = u64::from_str_radix(it.next()?, 16).ok()?;
        let n = u64::from_str_radix(it.next()?, 16).ok()?;
        let tag = it.next()?;
        if !same(tag.as_bytes(), self.tag(t, n).as_bytes()) || t > now_s {
            return None;
        }
        Some(now_s - t <= NONCE_TTL_S)
    }

    /// The `WWW-Authenticate` values: SHA-256 first, then MD5 for older drivers.
    pub fn challenges(&self, now_s: u64, stale: bool) -> [String; 2] {
        let n = self.nonce(now_s);
        let ch = |a: Algorithm| {
            format!(
                "Digest realm=\"{REALM}\", qop=\"auth\", algorithm={}, nonce=\"{n}\", opaque=\"{}\"{}",
                a.name(),
                self.tag(0, 0).get(..16).unwrap_or(""),
                if stale { ", stale=true" } else { "" }
            )
        };
        [ch(Algorithm::Sha256), ch(Algorithm::Md5)]
    }
}

/// Splits `a=b, c="d, e"` into pairs (quoted values unescaped).
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < 16 {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[k0..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
                val.push_str(&s[i..i + ch_len]);
                i += ch_len;
            }
            i += 1;
        } else {
            let v0 = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[v0..i].trim().to_string();
        }
        out.push((key, val));
    }
    out
}

/// What an `Authorization` header proved.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Wrong user or password: counts towards the lockout.
    Bad,
    /// A Digest answer to an old nonce of ours: challenge again with `stale=true`; not a failure.
    Stale,
    /// Not a scheme or form we take (answered 401 with the challenges; not a failure).
    Unusable,
    /// Basic over plain HTTP from another host, not allowed.
    BasicRefused,
}

/// Checks an `Authorization` header for `method` and the request target `uri`.
pub fn check_authorization(
    header: &str,
    method: &str,
    uri: &str,
    creds: &Credentials,
    key: &NonceKey,
    now_s: u64,
    basic_allowed: bool,
) -> Verdict {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        if !basic_allowed {
            return Verdict::BasicRefused;
        }
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
            return Verdict::Unusable;
        };
        let Ok(text) = String::from_utf8(raw) else {
            return Verdict::Bad;
        };
        let Some((u, p)) = text.split_once(':') else {
            return Verdict::Unusable;
        };
        if u.len() > CRED_FIELD_CAP || p.len() > CRED_FIELD_CAP {
            return Verdict::Bad;
        }
        return if creds.verify_password(u, p) {
            Verdict::Ok
        } else {
            Verdict::Bad
        };
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return Verdict::Unusable;
    }
    let params = auth_params(rest);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (Some(user), Some(realm), Some(nonce), Some(d_uri), Some(response)) = (
        get("username"),
        get("realm"),
        get("nonce"),
        get("uri"),
        get("response"),
    ) else {
        return Verdict::Unusable;
    };
    let alg = match get("algorithm").map(|a| a.to_ascii_uppercase()) {
        None => Algorithm::Md5,
        Some(a) if a == "MD5" => Algorithm::Md5,
        Some(a) if a == "SHA-256" => Algorithm::Sha256,
        Some(_) => return Verdict::Unusable,
    };
    if realm != REALM || d_uri != uri {
        return Verdict::Unusable;
    }
    let fresh = match key.check(nonce, now_s) {
        None => return Verdict::Unusable,
        Some(f) => f,
    };
    let ha1 = match alg {
        Algorithm::Sha256 => &creds.ha1_sha256,
        Algorithm::Md5 => &creds.ha1_md5,
    };
    let ha2 = alg.h(&format!("{method}:{d_uri}"));
    let expect = match get("qop") {
        Some("auth") => {
            let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                return Verdict::Unusable;
            };
            alg.h(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
        }
        // RFC 2069 Digest (no qop) signs no `nc`: a captured request could be replayed for
        // the nonce's life with any `nc` appended. The challenge says qop="auth"; only that.
        _ => return Verdict::Unusable,
    };
    let ok = same(expect.as_bytes(), response.to_ascii_lowercase().as_bytes())
        & same(user.as_bytes(), creds.user.as_bytes());
    match (ok, fresh) {
        (true, true) => Verdict::Ok,
        (true, false) => Verdict::Stale,
        (false, _) => Verdict::Bad,
    }
}

/// Basic headers verified lately, as MACs: the slow hash runs once per [`BASIC_CACHE_S`], not
/// on every request of a machine client (PBKDF2 takes most of a second on a handset).
pub const BASIC_CACHE_CAP: usize = 4;
pub const BASIC_CACHE_S: u64 = 300;

#[derive(Default)]
pub struct BasicCache(Vec<([u8; 32], u64)>);

impl BasicCache {
    pub fn hit(&mut self, mac: &[u8; 32], now_s: u64) -> bool {
        self.0
            .retain(|(_, at)| now_s.saturating_sub(*at) < BASIC_CACHE_S);
        self.0.iter().any(|(m, _)| same(m, mac))
    }

    pub fn insert(&mut self, mac: [u8; 32], now_s: u64) {
        if self.0.len() >= BASIC_CACHE_CAP {
            self.0.remove(0);
        }
        self.0.push((mac, now_s));
    }

    /// Forgets everything (the password may have changed hands).
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Digest nonces seen with their highest nonce count, so a captured request cannot be replayed
/// (bounded: when full, the nonce made first is forgotten, and a nonce made as early or earlier
/// is not taken any more: answered stale, its client asks for a new one. Entries leave only
/// that way or when their nonce expires ([`NONCE_TTL_S`], by the time it was made), so every
/// entry is younger than a forgotten nonce until that one has expired: a request captured with
/// it cannot come back in).
pub const NONCE_SEEN_CAP: usize = 64;

/// (nonce, highest nc, the time the nonce was made).
#[derive(Default)]
pub struct NonceCounts(Vec<(String, u32, u64)>);

/// The time a nonce of [`NonceKey::nonce`] was made (its first field).
fn nonce_time(nonce: &str) -> Option<u64> {
    u64::from_str_radix(nonce.split('-').next()?, 16).ok()
}

impl NonceCounts {
    /// Records `nc` for `nonce` (one this server made); `false` if it is not higher than one
    /// already seen (a replay), or the nonce may have been forgotten (see [`NONCE_SEEN_CAP`]).
    pub fn fresh(&mut self, nonce: &str, nc: u32, now_s: u64) -> bool {
        let Some(made) = nonce_time(nonce) else {
            return false;
        };
        self.0
            .retain(|(_, _, t)| now_s.saturating_sub(*t) <= NONCE_TTL_S);
        if let Some(e) = self.0.iter_mut().find(|(n, _, _)| n == nonce) {
            if nc <= e.1 {
                return false;
            }
            e.1 = nc;
            return true;
        }
        if self.0.len() >= NONCE_SEEN_CAP {
            if let Some(i) = (0..self.0.len()).min_by_key(|&i| self.0[i].2) {
                if made <= self.0[i].2 {
                    return false;
                }
                self.0.swap_remove(i);
            }
        }
        self.0.push((nonce.to_string(), nc, made));
        true
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The `nonce` and `nc` of a Digest `Authorization` header (no `nc`: 0).
pub fn digest_nonce_nc(header: &str) -> Option<(String, u32)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let p = auth_params(rest);
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let nc = get("nc")
        .and_then(|n| u32::from_str_radix(&n, 16).ok())
        .unwrap_or(0);
    Some((get("nonce")?, nc))
}

/// One allow-list entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Allow {
    Net(IpAddr, u8),
}

/// Client addresses allowed (empty: all). `192.168.1.0/24`, `10.0.0.5`, `192.168.1.*`, `::1`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Allow>);

impl AllowList {
    pub fn parse(s: &str) -> Result<AllowList, String> {
        let mut v = Vec::new();
        for item in s.split([',', ' ']).map(str::trim).filter(|i| !i.is_empty()) {
            if v.len() >= MAX_ALLOW {
                return Err(format!("more than {MAX_ALLOW} entries"));
            }
            let bad = || format!("{item:?} is not an address, CIDR or a.b.c.* pattern");
            let entry = if item.contains('*') {
                let parts: Vec<&str> = item.split('.').collect();
                if parts.len() != 4 {
                    return Err(bad());
                }
                let stars = parts.iter().rev().take_while(|p| **p == "*").count();
                if parts[..4 - stars].iter().any(|p| p.parse::<u8>().is_err()) {
                    return Err(bad());
                }
                let mut oct = [0u8; 4];
                for (i, p) in parts[..4 - stars].iter().enumerate() {
                    oct[i] = p.parse().map_err(|_| bad())?;
                }
                Allow::Net(IpAddr::from(oct), (8 * (4 - stars)) as u8)
            } else if let Some((a, n)) = item.split_once('/') {
                let a: IpAddr = a.parse().map_err(|_| bad())?;
                let n: u8 = n.parse().map_err(|_| bad())?;
                if n > if a.is_ipv4() { 32 } else { 128 } {
                    return Err(bad());
                }
                Allow::Net(a, n)
            } else {
                let a: IpAddr = item.parse().map_err(|_| bad())?;
                Allow::Net(a, if a.is_ipv4() { 32 } else { 128 })
            };
            v.push(entry);
        }
        Ok(AllowList(v))
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.is_empty()
            || self.0.iter().any(|Allow::Net(net, bits)| match (net, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
                _ => false,
            })
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = bits as usize;
    let whole = bits / 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

#[derive(Clone, Copy, Debug)]
struct Strike {
    ip: IpAddr,
    /// An IPv6 /64 network (all its addresses), not one address.
    net: bool,
    failures: u32,
    locked_until: u64,
}

/// Where failed logins are counted for `ip`: the address (an IPv4-mapped one, on a
/// dual-stack listener, as its IPv4 address), and for an IPv6 address also its /64 network,
/// with the larger budget [`LOCKOUT_NET_AFTER`].
fn sources(ip: IpAddr) -> heapless::Vec<(IpAddr, bool), 2> {
    let mut v = heapless::Vec::new();
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => {
                let _ = v.push((IpAddr::V4(v4), false));
            }
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                let _ = v.push((ip, false));
                let _ = v.push((IpAddr::from(o), true));
            }
        },
        v4 => {
            let _ = v.push((v4, false));
        }
    }
    v
}

/// Failed logins per address and per IPv6 /64 network ([`sources`]; bounded: [`LOCKOUT_CAP`]).
#[derive(Default)]
pub struct Lockout {
    table: Vec<Strike>,
    /// Entries pushed out because the table was full.
    pub evicted: u64,
    pub failures: u64,
    pub locks: u64,
}

impl Lockout {
    /// Seconds the address (or its network) is still locked for.
    pub fn locked(&self, ip: IpAddr, now_s: u64) -> Option<u64> {
        sources(ip)
            .iter()
            .filter_map(|&(ip, net)| {
                self.table
                    .iter()
                    .find(|s| s.ip == ip && s.net == net && s.locked_until > now_s)
                    .map(|s| s.locked_until - now_s)
            })
            .max()
    }

    /// Counts a failure; `Some(seconds)` when it locks the address (or its network).
    pub fn fail(&mut self, ip: IpAddr, now_s: u64) -> Option<u64> {
        self.failures += 1;
        let mut locked = None;
        for (ip, net) in sources(ip) {
            let i = match self.table.iter().position(|s| s.ip == ip && s.net == net) {
                Some(i) => i,
                None => {
                    if self.table.len() >= LOCKOUT_CAP {
                        // The entry that matters least: the one whose lock ended (or ends) first.
                        if let Some(v) =
                            (0..self.table.len()).min_by_key(|&i| self.table[i].locked_until)
                        {
                            self.table.swap_remove(v);
                            self.evicted += 1;
                        }
                    }
                    self.table.push(Strike {
                        ip,
                        net,
                        failures: 0,
                        locked_until: 0,
                    });
                    self.table.len() - 1
                }
            };
            let s = &mut self.table[i];
            s.failures = s.failures.saturating_add(1);
            let after = if net {
                LOCKOUT_NET_AFTER
            } else {
                LOCKOUT_AFTER
            };
            if s.failures < after {
                continue;
            }
            let shift = (s.failures - after).min(16);
            let secs = (LOCKOUT_S << shift).min(LOCKOUT_MAX_S);
            s.locked_until = now_s + secs;
            locked = locked.max(Some(secs));
        }
        if locked.is_some() {
            self.locks += 1;
        }
        locked
    }

    /// A login succeeded: the address's count, and its network's, start again.
    pub fn succeed(&mut self, ip: IpAddr) {
        for (ip, net) in sources(ip) {
            self.table.retain(|s| !(s.ip == ip && s.net == net));
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// One browser session.
#[derive(Clone)]
pub struct Session {
    id: String,
    pub user: String,
    pub csrf: String,
    last_used: u64,
}

/// The browser sessions (bounded: [`SESSION_CAP`]).
#[derive(Default)]
pub struct Sessions {
    table: Vec<Session>,
    pub evicted: u64,
}

impl Sessions {
    /// Starts a session; returns (id, csrf token).
    pub fn create(&mut self, user: &str, now_s: u64) -> io::Result<(String, String)> {
        self.expire(now_s);
        if self.table.len() >= SESSION_CAP {
            if let Some(v) = (0..self.table.len()).min_by_key(|&i| self.table[i].last_used) {
                self.table.swap_remove(v);
                self.evicted += 1;
            }
        }
        let id = hex(&random_bytes::<32>()?);
        let csrf = hex(&random_bytes::<24>()?);
        self.table.push(Session {
            id: id.clone(),
            user: user.to_string(),
            csrf: csrf.clone(),
            last_used: now_s,
        });
        Ok((id, csrf))
    }

    fn expire(&mut self, now_s: u64) {
        self.table
            .retain(|s| now_s.saturating_sub(s.last_used) < SESSION_IDLE_S);
    }

    /// The live session with this id (its idle clock restarts).
    pub fn touch(&mut self, id: &str, now_s: u64) -> Option<Session> {
        self.expire(now_s);
        let s = self
            .table
            .iter_mut()
            .find(|s| same(s.id.as_bytes(), id.as_bytes()))?;
        s.last_used = now_s;
        Some(s.clone())
    }

    pub fn end(&mut self, id: &str) {
        self.table.retain(|s| !same(s.id.as_bytes(), id.as_bytes()));
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("admin", "pa ss:wörd", 1000).unwrap()
    }

    #[test]
    fn file_round_trip_and_password() {
        let c = creds();
        let back = Credentials::parse(&c.to_text()).unwrap();
        assert_eq!(back, c);
        assert!(back.verify_password("admin", "pa ss:wörd"));
        assert!(!back.verify_password("admin", "pa ss:word"));
        assert!(!back.verify_password("root", "pa ss:wörd"));
        assert!(!c.to_text().contains("pa ss"));
        assert!(!format!("{c:?}").contains("pa ss"));
        assert!(Credentials::parse("hello").is_err());
        assert!(Credentials::parse(&c.to_text().replace("ha1-md5", "ha1-xx")).is_err());
    }

    /// The RFC 7616 section 3.9.1 example, with our realm: the answer a client computes.
    fn client_digest(
        alg: Algorithm,
        user: &str,
        pw: &str,
        method: &str,
        uri: &str,
        nonce: &str,
    ) -> String {
        let ha1 = alg.h(&format!("{user}:{REALM}:{pw}"));
        let ha2 = alg.h(&format!("{method}:{uri}"));
        let resp = alg.h(&format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", uri=\"{uri}\", algorithm={}, nonce=\"{nonce}\", nc=00000001, cnonce=\"0a4f113b\", qop=auth, response=\"{resp}\"",
            alg.name()
        )
    }

    #[test]
    fn digest_without_qop_is_refused() {
        let c = creds();
        let k = NonceKey::new().unwrap();
        let n = k.nonce(1000);
        let alg = Algorithm::Md5;
        let ha1 = alg.h(&format!("admin:{REALM}:pa ss:wörd"));
        let ha2 = alg.h("GET:/api/v1/config");
        let resp = alg.h(&format!("{ha1}:{n}:{ha2}"));
        let h = format!(
            "Digest username=\"admin\", realm=\"{REALM}\", uri=\"/api/v1/config\", nonce=\"{n}\", nc=00000009, response=\"{resp}\""
        );
        assert_eq!(
            check_authorization(&h, "GET", "/api/v1/config", &c, &k, 1010, false),
            Verdict::Unusable
        );
    }

    #[test]
    fn digest_sha256_md5_stale_and_forged() {
        let c = creds();
        let k = NonceKey::new().unwrap();
        let n = k.nonce(1000);
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            let h = client_digest(alg, "admin", "pa ss:wörd", "GET", "/api/v1/config", &n);
            assert_eq!(
                check_authorization(&h, "GET", "/api/v1/config", &c, &k, 1010, false),
                Verdict::Ok
            );
            // Another method or target than the one signed.
            assert_eq!(
                check_authorization(&h, "PUT", "/api/v1/config", &c, &k, 1010, false),
                Verdict::Bad
            );
            assert_eq!(
                check_authorization(&h, "GET", "/other", &c, &k, 1010, false),
                Verdict::Unusable
            );
            assert_eq!(
                check_authorization(
                    &h,
                    "GET",
                    "/api/v1/config",
                    &c,
                    &k,
                    1000 + NONCE_TTL_S + 1,
                    false
                ),
                Verdict::Stale
            );
            let wrong = client_digest(alg, "admin", "guess", "GET", "/api/v1/config", &n);
            assert_eq!(
                check_authorization(&wrong, "GET", "/api/v1/config", &c, &k, 1010, false),
                Verdict::Bad
            );
        }
        let other = NonceKey::new().unwrap();
        let forged = client_digest(
            Algorithm::Sha256,
            "admin",
            "pa ss:wörd",
            "GET",
            "/",
            &other.nonce(1000),
        );
        assert_eq!(
            check_authorization(&forged, "GET", "/", &c, &k, 1010, false),
            Verdict::Unusable
        );
        assert_ne!(
            k.nonce(5),
            k.nonce(5),
            "two clients in one second share no nonce"
        );
        let ch = k.challenges(5, true);
        assert!(ch[0].contains("algorithm=SHA-256") && ch[0].contains("stale=true"));
        assert!(ch[1].contains("algorithm=MD5"));
    }

    #[test]
    fn basic() {
        let c = creds();
        let k = NonceKey::new().unwrap();
        let enc = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert_eq!(
            check_authorization(&enc("admin:pa ss:wörd"), "GET", "/", &c, &k, 0, true),
            Verdict::Ok
        );
        assert_eq!(
            check_authorization(&enc("admin:x"), "GET", "/", &c, &k, 0, true),
            Verdict::Bad
        );
        assert_eq!(
            check_authorization(&enc("admin:pa ss:wörd"), "GET", "/", &c, &k, 0, false),
            Verdict::BasicRefused
        );
        assert_eq!(
            check_authorization("Basic !!!", "GET", "/", &c, &k, 0, true),
            Verdict::Unusable
        );
        assert_eq!(
            check_authorization("Bearer x", "GET", "/", &c, &k, 0, true),
            Verdict::Unusable
        );
        assert_eq!(
            check_authorization("", "GET", "/", &c, &k, 0, true),
            Verdict::Unusable
        );
    }

    /// Hostile headers: nothing panics, nothing random gets in.
    #[test]
    fn random_authorization_headers_never_panic_or_pass() {
        let c = Credentials::new("admin", "pa ss:wörd", 10).unwrap();
        let k = NonceKey::new().unwrap();
        let pieces = [
            "Digest ",
            "Basic ",
            "username=",
            "\"",
            "\\",
            ",",
            "=",
            "é",
            "😀",
            "realm=\"event-notify\"",
            "nonce=\"",
            "1-",
            "uri=\"/\"",
            "qop=auth",
            "response=\"",
            "algorithm=SHA-256",
            " ",
            "nc=1",
            "cnonce=\"x\"",
        ];
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            let mut h = String::new();
            for _ in 0..(x % 12) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                h.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            x = x.wrapping_add(1);
            let v = check_authorization(&h, "GET", "/", &c, &k, 100, true);
            assert_ne!(v, Verdict::Ok, "{h:?}");
            let _ = auth_params(&h);
            let _ = AllowList::parse(&h);
        }
    }

    #[test]
    fn a_digest_nonce_count_cannot_be_replayed() {
        let key = NonceKey::new().unwrap();
        let mut n = NonceCounts::default();
        let a = key.nonce(0);
        assert!(n.fresh(&a, 1, 0));
        assert!(!n.fresh(&a, 1, 1));
        assert!(n.fresh(&a, 2, 1));
        assert!(n.fresh(&key.nonce(1), 1, 1));
        assert!(!n.fresh("not-a-nonce", 1, 1));
        assert_eq!(n.len(), 2);
        let h = "Digest username=\"admin\", nonce=\"3c-ab\", nc=0000000a, uri=\"/\"";
        assert_eq!(digest_nonce_nc(h), Some(("3c-ab".into(), 10)));
        assert_eq!(digest_nonce_nc("Basic eA=="), None);
    }

    #[test]
    fn a_nonce_forgotten_to_make_room_cannot_be_replayed() {
        let key = NonceKey::new().unwrap();
        let mut n = NonceCounts::default();
        // A request is captured (nonce made at 100, nc 1); then other clients use the table's
        // worth of nonces within the nonce lifetime, which pushes it out.
        let captured = key.nonce(100);
        assert!(n.fresh(&captured, 1, 100));
        let unused_then = key.nonce(100);
        for i in 0..NONCE_SEEN_CAP as u64 {
            assert!(n.fresh(&key.nonce(101 + i), 1, 101 + i));
        }
        assert_eq!(n.len(), NONCE_SEEN_CAP);
        let now = 101 + NONCE_SEEN_CAP as u64;
        assert!(
            now - 100 <= NONCE_TTL_S,
            "the captured nonce is still fresh"
        );
        assert!(!n.fresh(&captured, 1, now), "the captured request replayed");
        // A nonce made as early is answered stale too (its client asks for a new one)...
        assert!(!n.fresh(&unused_then, 1, now));
        // ...and the ones made later still work, their counts kept.
        assert!(n.fresh(&key.nonce(now), 1, now));
        // Still so after the table has turned over again.
        for i in 0..NONCE_SEEN_CAP as u64 {
            assert!(n.fresh(&key.nonce(now + i), 1, now + i));
        }
        assert!(!n.fresh(&captured, 1, now + NONCE_SEEN_CAP as u64));
    }

    #[test]
    fn allow_list() {
        let a = AllowList::parse("192.168.1.*, 10.0.0.0/8 ::1 172.16.0.5").unwrap();
        let ok = |s: &str| a.allows(s.parse().unwrap());
        assert!(ok("192.168.1.77") && ok("10.200.1.1") && ok("::1") && ok("172.16.0.5"));
        assert!(ok("::ffff:192.168.1.3"));
        assert!(!ok("192.168.2.1") && !ok("11.0.0.1") && !ok("127.0.0.1") && !ok("172.16.0.6"));
        assert!(AllowList::parse("")
            .unwrap()
            .allows("1.2.3.4".parse().unwrap()));
        assert!(AllowList::parse("10.0.0.0/33").is_err());
        assert!(AllowList::parse("192.*.1.*").is_err());
        assert!(AllowList::parse("hello").is_err());
        assert!(AllowList::parse("10.1.*.*")
            .unwrap()
            .allows("10.1.9.9".parse().unwrap()));
    }

    #[test]
    fn lockout_three_then_doubling_and_bounded() {
        let mut l = Lockout::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(l.fail(ip, 0), None);
        assert_eq!(l.fail(ip, 0), None);
        assert_eq!(l.fail(ip, 0), Some(60));
        assert_eq!(l.locked(ip, 59), Some(1));
        assert_eq!(l.locked(ip, 60), None);
        assert_eq!(l.fail(ip, 61), Some(120));
        assert_eq!(l.fail(ip, 200), Some(240));
        for _ in 0..40 {
            l.fail(ip, 1000);
        }
        assert_eq!(l.locked(ip, 1000), Some(LOCKOUT_MAX_S));
        l.succeed(ip);
        assert_eq!(l.locked(ip, 1000), None);
        for i in 0..(LOCKOUT_CAP as u32 + 10) {
            l.fail(IpAddr::from(i.to_be_bytes()), 5);
        }
        assert_eq!(l.len(), LOCKOUT_CAP);
        assert_eq!(l.evicted, 10);
    }

    #[test]
    fn lockout_counts_an_ipv6_network_and_a_mapped_ipv4_address_as_one_source() {
        let mut l = Lockout::default();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        // Three guesses from one address of a /64: that address locked, not its neighbours.
        for _ in 0..2 {
            assert_eq!(l.fail(ip("2001:db8:1:2::a"), 0), None);
        }
        assert_eq!(l.fail(ip("2001:db8:1:2::a"), 0), Some(LOCKOUT_S));
        assert!(l.locked(ip("2001:db8:1:2::a"), 1).is_some());
        assert_eq!(l.locked(ip("2001:db8:1:2::b"), 1), None, "a neighbour");
        // A guess from each of new addresses of the /64: the network's budget, then all of it.
        for i in 1..LOCKOUT_NET_AFTER - 3 {
            let a = format!("2001:db8:1:2:{i:x}::1");
            assert_eq!(l.fail(ip(&a), 0), None, "{a}");
        }
        assert_eq!(l.fail(ip("2001:db8:1:2:ffff::c"), 0), Some(LOCKOUT_S));
        assert!(l.locked(ip("2001:db8:1:2:1234::1"), 1).is_some());
        assert_eq!(l.locked(ip("2001:db8:1:3::a"), 1), None, "another /64");
        // An IPv4 client through a dual-stack listener is its IPv4 address, not ::ffff:0:0/64.
        assert_eq!(l.fail(ip("::ffff:10.0.0.1"), 0), None);
        assert_eq!(l.fail(ip("10.0.0.1"), 0), None);
        assert_eq!(l.fail(ip("::ffff:10.0.0.1"), 0), Some(LOCKOUT_S));
        assert!(l.locked(ip("10.0.0.1"), 1).is_some());
        assert_eq!(l.locked(ip("::ffff:10.0.0.2"), 1), None);
        // A success clears its address and its network.
        l.succeed(ip("2001:db8:1:2::a"));
        assert_eq!(l.locked(ip("2001:db8:1:2::a"), 1), None);
        assert_eq!(l.locked(ip("2001:db8:1:2:1234::1"), 1), None);
    }

    #[test]
    fn sessions_bounded_and_idle() {
        let mut s = Sessions::default();
        let (id, csrf) = s.create("admin", 0).unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(s.touch(&id, 10).unwrap().csrf, csrf);
        assert!(s.touch(&id, 10 + SESSION_IDLE_S).is_none());
        let ids: Vec<_> = (0..SESSION_CAP + 2)
            .map(|i| s.create("admin", 100 + i as u64).unwrap().0)
            .collect();
        assert_eq!(s.len(), SESSION_CAP);
        assert!(s.touch(&ids[0], 200).is_none());
        assert!(s.touch(&ids[SESSION_CAP + 1], 200).is_some());
        s.end(&ids[SESSION_CAP + 1]);
        assert!(s.touch(&ids[SESSION_CAP + 1], 200).is_none());
    }
}
