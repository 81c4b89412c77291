//! The printed block of one request and the decoders it uses (forms, percent-encoding, Basic
//! credentials), with control characters escaped so that one value never looks like a request.

use crate::http::Head;

/// The printed block for one request (see the module documentation), ending with a newline.
pub fn render(head: &Head, body: &[u8]) -> String {
    let mut out = String::with_capacity(64 + head.target.len() * 2 + body.len());
    out.push_str(&head.method);
    out.push(' ');
    out.push_str(&head.target);
    out.push('\n');
    if let Some((_, query)) = head.target.split_once('?') {
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        push_pairs(&mut out, query.as_bytes());
    }
    for value in head.headers_named("authorization") {
        out.push_str("  auth: ");
        out.push_str(&auth_summary(value));
        out.push('\n');
    }
    if !body.is_empty() {
        let form = head.header("content-type").is_some_and(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        if form {
            push_pairs(&mut out, body);
        } else {
            out.push_str("  body: ");
            push_display(&mut out, &String::from_utf8_lossy(body));
            out.push('\n');
        }
    }
    out
}

fn push_pairs(out: &mut String, form: &[u8]) {
    for (key, value) in form_pairs(form) {
        out.push_str("  ");
        push_display(out, &key);
        if let Some(value) = value {
            out.push('=');
            push_display(out, &value);
        }
        out.push('\n');
    }
}

/// Splits `a=1&b=x+y&flag` into decoded pairs (`None`: no `=`); empty pieces are skipped.
pub fn form_pairs(form: &[u8]) -> Vec<(String, Option<String>)> {
    form.split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&piece[..i]), Some(form_decode(&piece[i + 1..]))),
            None => (form_decode(piece), None),
        })
        .collect()
}

/// Percent-decodes `s` with `+` as a space; a `%` not followed by two hex digits stays as it is;
/// bytes that are not UTF-8 become U+FFFD.
pub fn form_decode(s: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => bytes.push(b' '),
            b'%' if i + 2 < s.len() && hex(s[i + 1]).is_some() && hex(s[i + 2]).is_some() => {
                bytes.push(hex(s[i + 1]).unwrap_or(0) << 4 | hex(s[i + 2]).unwrap_or(0));
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

use crate::core::wire::hex;

/// Appends `s` with control characters escaped (`\n`, `\r`, `\t`, `\xNN`, `\u{NN}`), so that
/// a decoded value always stays on its own line.
fn push_display(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

/// What may be shown of an `Authorization` value: the scheme, and for Basic the user name.
/// The password and any other credential never appear.
pub fn auth_summary(value: &str) -> String {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        let mut shown = String::new();
        push_display(&mut shown, &scheme.to_ascii_lowercase());
        return shown;
    }
    match base64_decode(rest.trim().as_bytes()) {
        Some(decoded) => {
            let user = decoded.split(|&b| b == b':').next().unwrap_or_default();
            let mut shown = String::from("basic user=");
            push_display(&mut shown, &String::from_utf8_lossy(user));
            shown
        }
        None => "basic (not valid base64)".into(),
    }
}

/// Standard base64 with optional padding; `None` on anything else.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let s = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    if s.len() % 4 == 1 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | value(c)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Connection, Trickle};

    fn head(text: &str) -> Head {
        Head::parse(text.as_bytes()).expect("valid head")
    }

    fn shown(text: &str, body: &str) -> String {
        render(&head(text), body.as_bytes())
    }

    #[test]
    fn decodes_forms() {
        let cases: &[(&str, &str)] = &[
            ("a%20b", "a b"),
            ("a+b", "a b"),
            ("%2B", "+"),
            ("Bob%20%26%20Alice%20%232", "Bob & Alice #2"),
            ("%e2%82%ac", "€"),
            ("%E2%82%AC", "€"),
            ("%", "%"),
            ("%4", "%4"),
            ("%zz", "%zz"),
            ("100%", "100%"),
            ("%ff", "\u{fffd}"),
            ("a%C3", "a\u{fffd}"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(form_decode(input.as_bytes()), *want, "decoding {input:?}");
        }
    }

    #[test]
    fn splits_pairs() {
        let pairs = form_pairs(b"from=1002&&name=Bob+%26+Alice&flag&empty=&=v&k=a=b");
        let want: Vec<(String, Option<String>)> = vec![
            ("from".into(), Some("1002".into())),
            ("name".into(), Some("Bob & Alice".into())),
            ("flag".into(), None),
            ("empty".into(), Some("".into())),
            ("".into(), Some("v".into())),
            ("k".into(), Some("a=b".into())),
        ];
        assert_eq!(pairs, want);
    }

    #[test]
    fn decodes_base64() {
        assert_eq!(
            base64_decode(b"cGhvbmU6czNjcmV0").as_deref(),
            Some(&b"phone:s3cret"[..])
        );
        assert_eq!(base64_decode(b"YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode(b"YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode(b"YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode(b"").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode(b"Y"), None);
        assert_eq!(base64_decode(b"Y!=="), None);
        assert_eq!(base64_decode(b"YW I="), None);
    }

    #[test]
    fn renders_request_line_raw_and_query_decoded() {
        let out = shown(
            "GET /in?from=1002&name=Bob%20%26%20Alice%20%232&x=a+b HTTP/1.1\r\nHost: h\r\n",
            "",
        );
        assert_eq!(
            out,
            "GET /in?from=1002&name=Bob%20%26%20Alice%20%232&x=a+b\n  from=1002\n  name=Bob & Alice #2\n  x=a b\n"
        );
        assert_eq!(shown("GET / HTTP/1.1\r\n", ""), "GET /\n");
        assert_eq!(shown("GET /p? HTTP/1.1\r\n", ""), "GET /p?\n");
        assert_eq!(
            shown("GET /p?flag HTTP/1.0\r\n", ""),
            "GET /p?flag\n  flag\n"
        );
    }

    #[test]
    fn escapes_control_characters_in_values() {
        let out = shown("GET /?v=a%0AGET%20/fake&t=%09%00%7f%C2%85 HTTP/1.1\r\n", "");
        assert_eq!(out, "GET /?v=a%0AGET%20/fake&t=%09%00%7f%C2%85\n  v=a\\nGET /fake\n  t=\\t\\x00\\x7f\\u{85}\n");
    }

    #[test]
    fn shows_basic_user_never_password() {
        // phone:s3cret
        let out = shown(
            "GET /x HTTP/1.1\r\nAuthorization: Basic cGhvbmU6czNjcmV0\r\n",
            "",
        );
        assert_eq!(out, "GET /x\n  auth: basic user=phone\n");
        assert!(!out.contains("s3cret"));
        // A user with no password, a lower-case scheme, a bearer token and garbage.
        assert_eq!(auth_summary("basic dTE="), "basic user=u1");
        assert_eq!(auth_summary("Bearer abc.def"), "bearer");
        assert_eq!(auth_summary("Basic !!!"), "basic (not valid base64)");
        // "u:p:w" — a colon in the password stays hidden too.
        assert_eq!(auth_summary("Basic dTpwOnc="), "basic user=u");
    }

    #[test]
    fn renders_bodies() {
        let form = "POST /end HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: 20\r\n";
        assert_eq!(
            shown(form, "id=a84b&t=12&n=B+%26"),
            "POST /end\n  id=a84b\n  t=12\n  n=B &\n"
        );
        let json = "POST /end?id=1 HTTP/1.1\r\nContent-Type: application/json\r\n";
        assert_eq!(
            shown(json, "{\"id\":\"a84b\",\n\"t\":12}"),
            "POST /end?id=1\n  id=1\n  body: {\"id\":\"a84b\",\\n\"t\":12}\n"
        );
        let raw = "PUT /r HTTP/1.1\r\n";
        assert_eq!(
            render(&head(raw), b"\xffok"),
            "PUT /r\n  body: \u{fffd}ok\n"
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        // A deterministic pseudo-random byte soup with HTTP-ish pieces mixed in.
        let pieces: &[&[u8]] = &[
            b"GET ",
            b"POST ",
            b" HTTP/1.1",
            b"\r\n",
            b"\n",
            b":",
            b"Content-Length: ",
            b"9",
            b"Transfer-Encoding: chunked",
            b"%",
            b"?",
            b"&",
            b"=",
            b"\xff",
            b"\x00",
            b"ffffffff",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut input = Vec::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                input.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let mut conn = Connection::new(Trickle(&input, 1 + (seed % 5) as usize));
            while let Ok(Some(h)) = conn.read_head() {
                let _ = render(&h, b"");
                match h.body_kind() {
                    Ok(kind) => match conn.read_body(kind) {
                        Ok(body) => drop(render(&h, &body)),
                        Err(_) => break,
                    },
                    Err(_) => break,
                }
            }
        }
    }
}
