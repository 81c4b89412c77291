//! URL and body templates: parsed once at config load, expanded per event into bounded buffers.
//!
//! Grammar (after the GXV33XX page): `$name` (longest known name wins), `${name}`, `$$` for a
//! literal `$`. An unknown `$word` stays as typed and is reported as a warning. Values are
//! encoded where they are inserted; the admin's literal text is kept as typed.

use super::var::{Var, VarSource};
use core::fmt::{self, Write};
use heapless::{String, Vec};

/// Longest template an admin may save, in bytes.
pub const TEMPLATE_CAP: usize = 512;
/// Longest expanded URL, in bytes.
pub const URL_CAP: usize = 1024;
/// Longest expanded POST body, in bytes.
pub const BODY_CAP: usize = 1024;
/// Longest expansion of one event's extra headers (`Name: value` lines together), in bytes.
pub const HEADERS_CAP: usize = 512;
/// Most pieces (literal runs and variables) in one template.
pub const MAX_PARTS: usize = 64;
/// Most unknown `$words` remembered per template for warnings.
pub const MAX_WARNINGS: usize = 8;
/// Longest user name or password in a URL or in the per-event credentials.
pub const CRED_CAP: usize = 64;

/// How values are encoded where a variable is inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// RFC 3986: every byte outside `A-Z a-z 0-9 - . _ ~` becomes `%XX` (uppercase hex).
    Percent,
    /// Inside a JSON string: `"`, `\` and control characters escaped, UTF-8 kept.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Lit { start: u16, end: u16 },
    Var(Var),
}

/// What is wrong with a template, and where (1-based column, in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    pub column: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateErrorKind {
    #[error("template longer than {TEMPLATE_CAP} bytes")]
    TooLong,
    #[error("more than {MAX_PARTS} literal runs and variables")]
    TooManyParts,
    #[error("'${{' without a closing '}}'")]
    UnclosedBrace,
    #[error("unknown variable in '${{...}}'")]
    UnknownBraced,
    #[error("scheme must be http:// or https://")]
    BadScheme,
    #[error("no host after the scheme")]
    NoHost,
    #[error("space or control character in the URL (write it as %20 / %XX)")]
    BadChar,
    #[error("non-ASCII character in the URL (write it percent-encoded)")]
    NonAscii,
    #[error("user name or password longer than {CRED_CAP} bytes")]
    CredTooLong,
    #[error("bad percent-encoding in the user name or password")]
    BadCredEscape,
    #[error("the port must be a number from 1 to 65535")]
    BadPort,
    #[error("'@' after the host: a user name or password containing '/', '?' or '#' must be written percent-encoded (%2F, %3F, %23)")]
    AtAfterHost,
}

/// The expanded text did not fit its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expanded text longer than its buffer")]
pub struct Overflow;

/// User name and password for HTTP Basic. The password is never displayed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub user: String<CRED_CAP>,
    pub password: String<CRED_CAP>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:***)", self.user)
    }
}

/// A parsed template.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    text: String<TEMPLATE_CAP>,
    parts: Vec<Part, MAX_PARTS>,
    /// No scheme was written: expansion puts `http://` first.
    default_scheme: bool,
    /// Columns of unknown `$words` (kept as typed).
    unknown: Vec<u16, MAX_WARNINGS>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.text.as_str())
    }
}

/// A URL template holds printable ASCII without spaces: the first other character and its offset.
fn check_url_chars(s: &str) -> Result<(), (TemplateErrorKind, usize)> {
    for (i, c) in s.char_indices() {
        if c.is_control() || c == ' ' {
            return Err((TemplateErrorKind::BadChar, i));
        }
        if !c.is_ascii() {
            return Err((TemplateErrorKind::NonAscii, i));
        }
    }
    Ok(())
}

/// The scheme: `(no scheme written, where the authority starts)`. Only http and https.
fn url_scheme(s: &str) -> Result<(bool, usize), TemplateErrorKind> {
    match s.find("://") {
        Some(p)
            if s[..p]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') =>
        {
            let scheme = &s[..p];
            if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
                return Err(TemplateErrorKind::BadScheme);
            }
            Ok((false, p + 3))
        }
        _ => Ok((true, 0)),
    }
}

/// The `user:password` before the host, percent-decoded.
fn url_credentials(userinfo: &str) -> Result<Credentials, TemplateErrorKind> {
    let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let mut c = Credentials::default();
    decode_cred(u, &mut c.user)?;
    decode_cred(p, &mut c.password)?;
    Ok(c)
}

/// A password with an unencoded '/', '?' or '#' ends the authority early: the request would go
/// to the wrong host with the password in its path (issue 10 #4). `tail` is what follows the
/// authority; an '@' in its first path segment, outside a query's `a=b&c`, is that case.
fn password_cut_short(tail: &str) -> bool {
    let Some(at) = tail.find('@') else {
        return false;
    };
    let before = &tail[..at];
    let one_segment = !before.get(1..).unwrap_or("").contains('/');
    one_segment && !before.contains('=') && !before.contains('&')
}

/// The port, when written literally (issue 10 #3: `:8o8o` went to port 80): a bad one is the
/// offset of its ':' in `hostport`.
fn check_url_port(hostport: &str) -> Result<(), usize> {
    let port = if let Some(v6) = hostport.strip_prefix('[') {
        v6.find(']')
            .and_then(|e| v6[e + 1..].strip_prefix(':').map(|p| (e + 2, p)))
    } else {
        hostport.rfind(':').map(|c| (c, &hostport[c + 1..]))
    };
    match port {
        Some((colon, p)) if !p.contains('$') && crate::core::outbox::parse_port(p).is_none() => {
            Err(colon)
        }
        _ => Ok(()),
    }
}

fn err(kind: TemplateErrorKind, text: &str, byte: usize) -> TemplateError {
    let column = text[..byte.min(text.len())].chars().count() + 1;
    TemplateError { kind, column }
}

fn push_part(
    parts: &mut Vec<Part, MAX_PARTS>,
    p: Part,
    text: &str,
    at: usize,
) -> Result<(), TemplateError> {
    // Merge adjacent literal runs (a `$$` splits them).
    if let (Part::Lit { start, end }, Some(Part::Lit { end: last_end, .. })) = (p, parts.last_mut())
    {
        if *last_end == start {
            *last_end = end;
            return Ok(());
        }
    }
    if let Part::Lit { start, end } = p {
        if start == end {
            return Ok(());
        }
    }
    parts
        .push(p)
        .map_err(|_| err(TemplateErrorKind::TooManyParts, text, at))
}

/// The literal text before a variable (from `lit_start` to its `$`), then the variable.
fn push_var(
    parts: &mut Vec<Part, MAX_PARTS>,
    lit_start: usize,
    dollar: usize,
    var: Var,
    src: &str,
) -> Result<(), TemplateError> {
    let lit = Part::Lit {
        start: lit_start as u16,
        end: dollar as u16,
    };
    push_part(parts, lit, src, dollar)?;
    push_part(parts, Part::Var(var), src, dollar)
}

impl Template {
    /// Parses a body template (any text; values encoded per `Encoding` at expansion).
    pub fn parse_body(src: &str) -> Result<Template, TemplateError> {
        Self::parse_inner(src, false)
    }

    /// Parses a URL template: the scheme may be left out (`http://` is assumed); user name and
    /// password in the authority are taken out and returned as credentials, so an expanded URL
    /// never carries them.
    ///
    /// ```
    /// use event_notify::{Template, Var, Vars, Encoding};
    /// let (t, creds) = Template::parse_url("phone:s3cret@192.168.5.10:8080/in?from=$remote").unwrap();
    /// assert_eq!(creds.unwrap().user.as_str(), "phone");
    /// let mut vars = Vars::new();
    /// vars.set(Var::Remote, "Bob & Alice #2");
    /// let mut url = heapless::String::<1024>::new();
    /// t.expand(&vars, Encoding::Percent, &mut url).unwrap();
    /// assert_eq!(url.as_str(), "http://192.168.5.10:8080/in?from=Bob%20%26%20Alice%20%232");
    /// ```
    pub fn parse_url(src: &str) -> Result<(Template, Option<Credentials>), TemplateError> {
        let full = src;
        if full.len() > TEMPLATE_CAP {
            return Err(err(TemplateErrorKind::TooLong, full, TEMPLATE_CAP));
        }
        let lead = full.len() - full.trim_start().len();
        let s = full.trim();
        // Errors point at columns of what the admin typed: `at` is an offset in `s`.
        let fail = |k, at: usize| err(k, full, lead + at);
        check_url_chars(s).map_err(|(k, at)| fail(k, at))?;
        let (default_scheme, rest_at) = url_scheme(s).map_err(|k| fail(k, 0))?;
        // Authority: up to the first '/', '?' or '#'.
        let rest = &s[rest_at..];
        let auth_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..auth_len];
        let mut creds = None;
        let mut host_at = rest_at;
        if let Some(at) = authority.rfind('@') {
            creds = Some(url_credentials(&authority[..at]).map_err(|k| fail(k, rest_at))?);
            host_at = rest_at + at + 1;
        }
        if host_at >= rest_at + auth_len || s[host_at..].starts_with(':') {
            return Err(fail(TemplateErrorKind::NoHost, host_at));
        }
        if creds.is_none() && password_cut_short(&rest[auth_len..]) {
            return Err(fail(TemplateErrorKind::AtAfterHost, rest_at));
        }
        check_url_port(&s[host_at..rest_at + auth_len])
            .map_err(|colon| fail(TemplateErrorKind::BadPort, host_at + colon + 1))?;
        // The template without the userinfo.
        let mut text = String::<TEMPLATE_CAP>::new();
        let _ = text.push_str(&s[..rest_at]);
        let _ = text.push_str(&s[host_at..]);
        let mut t = Self::parse_inner(&text, true).map_err(|mut e| {
            // Columns refer to what the admin typed.
            let shift = full[..lead + host_at].chars().count() - s[..rest_at].chars().count();
            if e.column > s[..rest_at].chars().count() {
                e.column += shift;
            } else {
                e.column += full[..lead].chars().count();
            }
            e
        })?;
        t.default_scheme = default_scheme;
        Ok((t, creds))
    }

    fn parse_inner(src: &str, _url: bool) -> Result<Template, TemplateError> {
        let mut text = String::<TEMPLATE_CAP>::new();
        text.push_str(src)
            .map_err(|_| err(TemplateErrorKind::TooLong, src, TEMPLATE_CAP))?;
        let mut parts = Vec::new();
        let mut unknown = Vec::new();
        let b = src.as_bytes();
        let mut lit_start = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                i += 1;
                continue;
            }
            let dollar = i;
            let after = &src[i + 1..];
            if after.starts_with('$') {
                // `$$`: keep one `$` as literal text, skip the other.
                push_part(
                    &mut parts,
                    Part::Lit {
                        start: lit_start as u16,
                        end: (i + 1) as u16,
                    },
                    src,
                    i,
                )?;
                i += 2;
                lit_start = i;
                continue;
            }
            if let Some(inner) = after.strip_prefix('{') {
                let close = inner
                    .find('}')
                    .ok_or_else(|| err(TemplateErrorKind::UnclosedBrace, src, dollar))?;
                let name = &inner[..close];
                let var = Var::from_name(name)
                    .ok_or_else(|| err(TemplateErrorKind::UnknownBraced, src, dollar))?;
                push_var(&mut parts, lit_start, dollar, var, src)?;
                i = dollar + 2 + close + 1;
                lit_start = i;
                continue;
            }
            match Var::longest_prefix(after) {
                Some((var, len)) => {
                    push_var(&mut parts, lit_start, dollar, var, src)?;
                    i = dollar + 1 + len;
                    lit_start = i;
                }
                None => {
                    // Unknown `$word` (or a lone `$`): kept as typed; warn if it looks like a name
                    // (the first MAX_WARNINGS of them: the rest are not listed).
                    if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                        let _ = unknown.push((src[..dollar].chars().count() + 1) as u16);
                    }
                    i += 1;
                }
            }
        }
        push_part(
            &mut parts,
            Part::Lit {
                start: lit_start as u16,
                end: b.len() as u16,
            },
            src,
            b.len(),
        )?;
        Ok(Template {
            text,
            parts,
            default_scheme: false,
            unknown,
        })
    }

    /// The template as stored (without credentials).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Columns (1-based, in the stored text) of unknown `$words`, kept as typed.
    pub fn unknown_vars(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.unknown.iter().map(move |&col| {
            let start = self
                .text
                .char_indices()
                .nth(col as usize - 1)
                .map(|(i, _)| i)
                .unwrap_or(0);
            let word = &self.text[start + 1..];
            let len = word
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(word.len());
            (col as usize, &self.text[start..start + 1 + len])
        })
    }

    /// The variables this template uses.
    pub fn vars(&self) -> impl Iterator<Item = Var> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(*v),
            Part::Lit { .. } => None,
        })
    }

    /// Expands into `out` (cleared first), encoding each value with `enc`. No allocation.
    pub fn expand<const N: usize>(
        &self,
        vars: &dyn VarSource,
        enc: Encoding,
        out: &mut String<N>,
    ) -> Result<(), Overflow> {
        out.clear();
        self.write_to(vars, enc, out).map_err(|_| Overflow)
    }

    /// Expands into any writer.
    pub fn write_to(
        &self,
        vars: &dyn VarSource,
        enc: Encoding,
        out: &mut impl Write,
    ) -> fmt::Result {
        if self.default_scheme {
            out.write_str("http://")?;
        }
        for p in &self.parts {
            match *p {
                Part::Lit { start, end } => {
                    out.write_str(&self.text[start as usize..end as usize])?
                }
                Part::Var(v) => match enc {
                    Encoding::Percent => percent_encode(vars.value(v), out)?,
                    Encoding::Json => json_escape(vars.value(v), out)?,
                },
            }
        }
        Ok(())
    }
}

fn decode_cred(src: &str, dst: &mut String<CRED_CAP>) -> Result<(), TemplateErrorKind> {
    let b = src.as_bytes();
    let mut raw = Vec::<u8, CRED_CAP>::new();
    let mut i = 0;
    while i < b.len() {
        let byte = if b[i] == b'%' {
            let h = |x: Option<&u8>| x.and_then(|c| (*c as char).to_digit(16));
            match (h(b.get(i + 1)), h(b.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    i += 3;
                    (hi * 16 + lo) as u8
                }
                _ => return Err(TemplateErrorKind::BadCredEscape),
            }
        } else {
            i += 1;
            b[i - 1]
        };
        raw.push(byte).map_err(|_| TemplateErrorKind::CredTooLong)?;
    }
    let s = core::str::from_utf8(&raw).map_err(|_| TemplateErrorKind::BadCredEscape)?;
    dst.clear();
    dst.push_str(s).map_err(|_| TemplateErrorKind::CredTooLong)
}

/// Percent-encodes every byte outside RFC 3986's unreserved set, uppercase hex.
///
/// ```
/// let mut s = heapless::String::<64>::new();
/// event_notify::core::template::percent_encode("Bob & Alice #2/ü", &mut s).unwrap();
/// assert_eq!(s.as_str(), "Bob%20%26%20Alice%20%232%2F%C3%BC");
/// ```
pub fn percent_encode(value: &str, out: &mut impl Write) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let b = value.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            continue;
        }
        // Unreserved bytes are ASCII, so a run never starts inside a character.
        if run < i {
            out.write_str(&value[run..i])?;
        }
        let esc = [b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]];
        // The three bytes are ASCII.
        out.write_str(core::str::from_utf8(&esc).unwrap_or("%3F"))?;
        run = i + 1;
    }
    out.write_str(&value[run..])
}

/// Escapes a value for the inside of a JSON string.
pub fn json_escape(value: &str, out: &mut impl Write) -> fmt::Result {
    let mut run = 0;
    for (i, c) in value.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => None,
            _ => continue,
        };
        out.write_str(&value[run..i])?;
        match esc {
            Some(e) => out.write_str(e)?,
            None => write!(out, "\\u{:04x}", c as u32)?,
        }
        run = i + c.len_utf8();
    }
    out.write_str(&value[run..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::var::Vars;

    fn url(t: &str, vars: &Vars) -> std::string::String {
        let (t, _) = Template::parse_url(t).unwrap();
        let mut out = String::<URL_CAP>::new();
        t.expand(vars, Encoding::Percent, &mut out).unwrap();
        out.as_str().into()
    }

    #[test]
    fn dollar_forms() {
        let mut v = Vars::new();
        v.set(Var::CallId, "c1");
        v.set(Var::CallDirection, "incoming");
        v.set(Var::Local, "1001");
        v.set(Var::Language, "en");
        assert_eq!(
            url("h/x?a=$call_id&d=$calldirection", &v),
            "http://h/x?a=c1&d=incoming"
        );
        assert_eq!(url("h/x?l=$local$language", &v), "http://h/x?l=1001en");
        assert_eq!(url("h/x?l=${local}host", &v), "http://h/x?l=1001host");
        assert_eq!(url("h/x?l=$localhost", &v), "http://h/x?l=1001host");
        assert_eq!(url("h/x?p=$$5&q=$$$local", &v), "http://h/x?p=$5&q=$1001");
        assert_eq!(url("h/x?u=$unknown&e=$", &v), "http://h/x?u=$unknown&e=$");
        assert_eq!(url("h/$remote", &v), "http://h/");
    }

    #[test]
    fn errors_have_columns() {
        let e = |t: &str| Template::parse_url(t).unwrap_err();
        assert_eq!(
            e("ftp://h/x"),
            TemplateError {
                kind: TemplateErrorKind::BadScheme,
                column: 1
            }
        );
        assert_eq!(
            e("h/x?a=${remote"),
            TemplateError {
                kind: TemplateErrorKind::UnclosedBrace,
                column: 7
            }
        );
        assert_eq!(
            e("h/x?a=${nope}"),
            TemplateError {
                kind: TemplateErrorKind::UnknownBraced,
                column: 7
            }
        );
        assert_eq!(
            e("http://h/x y"),
            TemplateError {
                kind: TemplateErrorKind::BadChar,
                column: 11
            }
        );
        assert_eq!(
            e("http:///x"),
            TemplateError {
                kind: TemplateErrorKind::NoHost,
                column: 8
            }
        );
        assert_eq!(
            e("u:p@/x"),
            TemplateError {
                kind: TemplateErrorKind::NoHost,
                column: 5
            }
        );
        assert_eq!(e("http://u:p@h/x?a=${z}").column, 18);
        assert_eq!(e(&"h/".repeat(300)).kind, TemplateErrorKind::TooLong);
    }

    #[test]
    fn credentials_are_taken_out() {
        let (t, c) = Template::parse_url("https://ph%40one:p%3Ass@crm.example/x").unwrap();
        let c = c.unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("ph@one", "p:ss"));
        assert_eq!(t.as_str(), "https://crm.example/x");
        assert!(!format!("{c:?}").contains("p:ss"));
    }

    #[test]
    fn json_escaping() {
        let mut s = String::<64>::new();
        json_escape("a\"b\\c\nd\u{1}ü", &mut s).unwrap();
        assert_eq!(s.as_str(), "a\\\"b\\\\c\\nd\\u0001ü");
    }

    #[test]
    fn warnings_for_unknown_words() {
        let (t, _) = Template::parse_url("h/x?a=$foo&b=$remote&c=$bar_1").unwrap();
        let w: std::vec::Vec<_> = t.unknown_vars().collect();
        assert_eq!(w, vec![(7, "$foo"), (24, "$bar_1")]);
    }
}
