//! Table-driven template cases: every variable, aliases, `${}`, `$$`, unknown names, values that
//! need encoding, over-long values and templates.

use event_notify::core::template::{TemplateErrorKind, TEMPLATE_CAP, URL_CAP};
use event_notify::core::var::VALUE_CAP;
use event_notify::{Encoding, Template, Var, Vars};

fn vars() -> Vars {
    let mut v = Vars::new();
    for (var, value) in [
        (Var::PhoneIp, "192.168.5.20"),
        (Var::Mac, "000b82a1b2c3"),
        (Var::Product, "GXV3370"),
        (Var::ProgramVersion, "1.0.1.28"),
        (Var::HardwareVersion, "V1.2A"),
        (Var::Language, "de"),
        (Var::Local, "1001"),
        (Var::DisplayLocal, "Front Desk"),
        (Var::Remote, "1002"),
        (Var::DisplayRemote, "Bob & Alice #2"),
        (Var::CallId, "a84b4c76e66710"),
        (Var::ActiveUser, "1001"),
        (Var::ActiveHost, "pbx.example"),
        (Var::Duration, "61"),
        (Var::CallDirection, "incoming"),
        (Var::Event, "incoming_call"),
        (Var::Timestamp, "1700000000"),
    ] {
        v.set(var, value);
    }
    v
}

fn expand(template: &str, v: &Vars) -> String {
    let (t, _) = Template::parse_url(template).unwrap_or_else(|e| panic!("{template}: {e}"));
    let mut out = heapless::String::<URL_CAP>::new();
    t.expand(v, Encoding::Percent, &mut out).unwrap();
    out.as_str().to_string()
}

#[test]
fn every_variable_and_alias() {
    let v = vars();
    let cases: &[(&str, &str)] = &[
        ("$phone_ip", "192.168.5.20"),
        ("$mac", "000b82a1b2c3"),
        ("$product", "GXV3370"),
        ("$program_version", "1.0.1.28"),
        ("$hardware_version", "V1.2A"),
        ("$language", "de"),
        ("$local", "1001"),
        ("$display_local", "Front%20Desk"),
        ("$remote", "1002"),
        ("$display_remote", "Bob%20%26%20Alice%20%232"),
        ("$call_id", "a84b4c76e66710"),
        ("$active_user", "1001"),
        ("$active_host", "pbx.example"),
        ("$duration", "61"),
        ("$calldirection", "incoming"),
        ("$event", "incoming_call"),
        ("$timestamp", "1700000000"),
        // aliases of other firmwares
        ("$ip", "192.168.5.20"),
        ("$model", "GXV3370"),
        ("$firmware", "1.0.1.28"),
        ("$call-id", "a84b4c76e66710"),
        ("$callDirection", "incoming"),
        ("$callerID", "1002"),
        ("$calledNumber", "1002"),
        // ${} separates a name from text; $$ is a literal $
        ("${remote}x", "1002x"),
        ("${call-id}", "a84b4c76e66710"),
        ("$$", "$"),
        ("$$remote", "$remote"),
        ("$$$remote", "$1002"),
        // longest known name wins
        ("$localhost", "1001host"),
        ("$local_x", "1001_x"),
        ("$call_idx", "a84b4c76e66710x"),
        // unknown names stay as typed
        ("$foo", "$foo"),
        ("$", "$"),
        ("$1", "$1"),
        ("a$", "a$"),
    ];
    for (t, want) in cases {
        let url = expand(&format!("h/p?x={t}"), &v);
        assert_eq!(url, format!("http://h/p?x={want}"), "template {t}");
    }
}

#[test]
fn values_are_percent_encoded_and_literal_text_is_kept() {
    let cases: &[(&str, &str)] = &[
        ("Bob & Alice #2", "Bob%20%26%20Alice%20%232"),
        ("a/b?c=d", "a%2Fb%3Fc%3Dd"),
        ("100%", "100%25"),
        ("Jürgen", "J%C3%BCrgen"),
        ("😀", "%F0%9F%98%80"),
        ("-._~AZaz09", "-._~AZaz09"),
        ("+", "%2B"),
        ("\"<>", "%22%3C%3E"),
        ("", ""),
    ];
    for (value, want) in cases {
        let mut v = Vars::new();
        v.set(Var::DisplayRemote, value);
        let url = expand(
            "https://crm.example:8443/pop?n=$display_remote&lit=a%20b,c;d",
            &v,
        );
        assert_eq!(
            url,
            format!("https://crm.example:8443/pop?n={want}&lit=a%20b,c;d"),
            "value {value:?}"
        );
    }
}

#[test]
fn scheme_defaulting() {
    let v = vars();
    assert_eq!(
        expand("192.168.5.10:8080/ev?id=$call_id", &v),
        "http://192.168.5.10:8080/ev?id=a84b4c76e66710"
    );
    assert_eq!(expand("HTTPS://h/x", &v), "HTTPS://h/x");
    assert_eq!(expand("  h/x  ", &v), "http://h/x");
    assert_eq!(
        expand("$active_host:5060/x", &v),
        "http://pbx.example:5060/x"
    );
}

#[test]
fn over_long_values_are_cut_on_a_character_boundary() {
    let mut v = Vars::new();
    assert!(v.set(Var::DisplayRemote, &"ü".repeat(VALUE_CAP)));
    assert_eq!(v.get(Var::DisplayRemote).len(), VALUE_CAP);
    assert!(v.set(Var::DisplayRemote, &format!("a{}", "😀".repeat(VALUE_CAP))));
    let kept = v.get(Var::DisplayRemote);
    assert!(kept.len() <= VALUE_CAP && kept.len() > VALUE_CAP - 4);
    // Expanding 7 cut values fills the URL buffer: refused, not truncated.
    let mut long = Vars::new();
    long.set(Var::DisplayRemote, &"ü".repeat(VALUE_CAP));
    let (t, _) = Template::parse_url(&format!("h/?{}", "a=$display_remote&".repeat(4))).unwrap();
    let mut out = heapless::String::<URL_CAP>::new();
    assert!(t.expand(&long, Encoding::Percent, &mut out).is_err());
}

#[test]
fn over_long_and_broken_templates_are_refused_with_a_column() {
    let long = format!("h/{}", "x".repeat(TEMPLATE_CAP));
    let cases: &[(&str, TemplateErrorKind, usize)] = &[
        (&long, TemplateErrorKind::TooLong, TEMPLATE_CAP + 1),
        ("h/x?a=${remote", TemplateErrorKind::UnclosedBrace, 7),
        ("h/x?a=${nope}", TemplateErrorKind::UnknownBraced, 7),
        ("gopher://h/", TemplateErrorKind::BadScheme, 1),
        ("http://", TemplateErrorKind::NoHost, 8),
        ("h/x y", TemplateErrorKind::BadChar, 4),
        ("h/ü", TemplateErrorKind::NonAscii, 3),
        ("h/x\ty", TemplateErrorKind::BadChar, 4),
    ];
    for (t, kind, column) in cases {
        let e = Template::parse_url(t).unwrap_err();
        assert_eq!((e.kind, e.column), (*kind, *column), "template {t:?}");
    }
}

#[test]
fn json_bodies_escape_values() {
    let (t, _) = (
        Template::parse_body(r#"{"name":"$display_remote","id":"$call_id"}"#).unwrap(),
        (),
    );
    let mut v = Vars::new();
    v.set(Var::DisplayRemote, "Bob \"the\" \\ Ü\n");
    v.set(Var::CallId, "c1");
    let mut out = heapless::String::<256>::new();
    t.expand(&v, Encoding::Json, &mut out).unwrap();
    assert_eq!(out.as_str(), r#"{"name":"Bob \"the\" \\ Ü\n","id":"c1"}"#);
}
