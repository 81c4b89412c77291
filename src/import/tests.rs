use super::*;

fn ok(text: &str, from: Option<Vendor>) -> Imported {
    import(text, from, None).unwrap_or_else(|e| panic!("{e}"))
}

fn events(i: &Imported) -> Map<String, Value> {
    let v: Value = serde_json::from_str(&i.config_json).unwrap();
    v["events"].as_object().unwrap().clone()
}

fn has(i: &Imported, needle: &str) -> bool {
    i.report.iter().any(|f| f.to_string().contains(needle))
}

#[test]
fn yealink_keys_values_and_variables() {
    let text = "#!version:1.0.0.1\n# comment\n\naction_url.incoming_call = \"http://10.0.0.5/in?from=$callerID&n=$display_remote&id=$call_id&m=$mac\"\n  action_url.call_established=http://10.0.0.5/up?u=$active_url&x=$wat\naction_url.mute = http://10.0.0.5/m\naction_url.dnd_on =\naccount.1.password = secret\ngarbage line\n";
    let i = ok(text, None);
    assert_eq!(i.vendor, Vendor::Yealink);
    let e = events(&i);
    assert_eq!(
        e["incoming_call"],
        "http://10.0.0.5/in?from=$remote&n=$display_remote&id=$call_id&m=$mac"
    );
    assert_eq!(
        e["establish_call"],
        "http://10.0.0.5/up?u=$$active_url&x=$$wat"
    );
    assert_eq!(e["dnd_on"], "");
    assert!(
        has(&i, "line 6: action_url.mute: skipped: no equivalent event"),
        "{:#?}",
        i.report
    );
    assert!(has(&i, "$callerID written as $remote"));
    assert!(has(
        &i,
        "line 5: action_url.call_established: warning: $active_url"
    ));
    assert!(has(&i, "$wat: not a yealink variable"));
    assert!(has(&i, "line 9: skipped: not a `key = value` line"));
    assert!(has(&i, "1 other settings"));
    assert!(!i.report.iter().any(|f| f.to_string().contains("secret")));
}

#[test]
fn a_vendor_variable_is_its_whole_word() {
    let i = ok(
        "action_url.incoming_call = http://h/in?l=$local_uri&r=$remote&x=$remote_uri\n",
        None,
    );
    assert_eq!(
        events(&i)["incoming_call"],
        "http://h/in?l=$$local_uri&r=$remote&x=$$remote_uri"
    );
    assert!(
        has(&i, "$local_uri: not a yealink variable"),
        "{:#?}",
        i.report
    );
    // Grandstream's rule is the guide's: the longest known name.
    let i = ok(
        "<config version=\"1\"><P8310>h/x?a=$remote_x</P8310></config>",
        None,
    );
    assert_eq!(events(&i)["incoming_call"], "h/x?a=${remote}_x");
}

#[test]
fn snom_xml_and_text() {
    let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<settings>\n <phone-settings e=\"2\">\n  <!-- action URLs -->\n  <action_incoming_url perm=\"\">http://h/in?a=$remote&amp;c=$call-id&amp;k=$active_key</action_incoming_url>\n  <action_log_on_url perm=\"R\"> http://h/reg?u=$active_user </action_log_on_url>\n  <action_foo_url perm=\"\">http://h/x</action_foo_url>\n  <user_pass idx=\"1\" perm=\"\">pw</user_pass>\n </phone-settings>\n <functionKeys><fkey idx=\"0\">line</fkey></functionKeys>\n</settings>\n";
    let i = ok(xml, None);
    assert_eq!(i.vendor, Vendor::Snom);
    let e = events(&i);
    assert_eq!(
        e["incoming_call"],
        "http://h/in?a=$remote&c=$call_id&k=$$active_key"
    );
    assert_eq!(e["registration"], "http://h/reg?u=$active_user");
    assert!(
        has(&i, "line 7: action_foo_url: skipped"),
        "{:#?}",
        i.report
    );
    let text = "# snom\naction_incoming_url!: http://h/in?c=$call-id\naction_dnd_on_url&: 'http://h/dnd'\nuser_name1: 100\n";
    let i = ok(text, None);
    assert_eq!(i.vendor, Vendor::Snom);
    let e = events(&i);
    assert_eq!(e["incoming_call"], "http://h/in?c=$call_id");
    assert_eq!(e["dnd_on"], "http://h/dnd");
}

#[test]
fn grandstream_both_forms() {
    let v1 = "<?xml version=\"1.0\"?>\n<gs_provision version=\"1\">\n <mac>000b82123456</mac>\n <config version=\"1\">\n  <P8310>10.0.0.9:8080/in?r=$remote&amp;d=$calldirection</P8310>\n  <P8307>10.0.0.9/x?u=$active_user</P8307>\n  <P8375>0</P8375>\n  <P47>pbx.example</P47>\n </config>\n</gs_provision>\n";
    let i = ok(v1, None);
    assert_eq!(i.vendor, Vendor::Grandstream);
    let e = events(&i);
    assert_eq!(
        e["incoming_call"],
        "10.0.0.9:8080/in?r=$remote&d=$calldirection"
    );
    assert_eq!(e.len(), 1);
    assert!(has(&i, "line 6: P8307: skipped"), "{:#?}", i.report);
    assert!(has(&i, "2 other settings"));
    let v2 = "<gs_provision><config version=\"2\"><item name=\"actionUrl.incoming\">http://h/$remote</item><item name=\"P8311\">http://h/out</item></config></gs_provision>";
    let i = ok(v2, None);
    assert_eq!(events(&i)["outgoing_call"], "http://h/out");
    assert!(has(&i, "actionUrl.incoming: skipped"));
}

#[test]
fn bad_urls_are_skipped_with_the_reason_and_never_echoed() {
    let text = "action_url.incoming_call = ftp://u:topsecret@h/x\naction_url.outgoing_call = http://h/a b\naction_url.hold = http://h/ok\n";
    let i = ok(text, Some(Vendor::Yealink));
    let e = events(&i);
    assert_eq!(e.len(), 1);
    assert!(ok("ACTION_URL.Hold = http://h/x\n", Some(Vendor::Yealink)).events == 1);
    assert!(
        has(&i, "incoming_call: the URL is refused: column 1: scheme"),
        "{:#?}",
        i.report
    );
    assert!(has(&i, "outgoing_call: the URL is refused"));
    for f in &i.report {
        assert!(!f.to_string().contains("topsecret"));
    }
}

#[test]
fn merge_keeps_the_rest_and_replaces_imported_events() {
    let base: Value = serde_json::from_str(
        r#"{"delivery": {"attempts": 3}, "events": {"action_incoming_url": {"url": "http://old/in", "password": "pw"}, "dnd_on": "http://old/dnd", "hold_call": "http://old/hold"}, "device": {"language": "de"}}"#,
    )
    .unwrap();
    let text = "action_url.incoming_call = http://new/in\naction_url.dnd_on =\n";
    let i = import(text, None, Some(&base)).unwrap();
    let v: Value = serde_json::from_str(&i.config_json).unwrap();
    assert_eq!(v["delivery"]["attempts"], 3);
    assert_eq!(v["device"]["language"], "de");
    let e = v["events"].as_object().unwrap();
    assert_eq!(e["incoming_call"], "http://new/in");
    assert!(!e.contains_key("action_incoming_url") && !e.contains_key("dnd_on"));
    assert_eq!(e["hold_call"], "http://old/hold");
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["delivery", "events", "device"]);
    let bad: Value = serde_json::from_str(r#"{"events": {"ringing": "h/x"}}"#).unwrap();
    assert!(matches!(
        import(text, None, Some(&bad)),
        Err(ImportError::Base(_))
    ));
}

#[test]
fn findings_as_json_for_the_api() {
    let i = ok(
        "action_url.mute = http://h/m\naction_url.hold = http://h/h\n",
        None,
    );
    let j = i.report[0].to_json();
    assert_eq!(j["line"], 1);
    assert_eq!(j["key"], "action_url.mute");
    assert_eq!(j["level"], "skipped");
    assert!(j["message"].as_str().unwrap().contains("no equivalent"));
}

#[test]
fn refusals() {
    assert_eq!(
        import("hello", None, None).unwrap_err(),
        ImportError::UnknownFormat
    );
    assert_eq!(
        import("<x/>", None, None).unwrap_err(),
        ImportError::UnknownFormat
    );
    assert!(matches!(
        import("<settings><phone-settings>", None, None),
        Err(ImportError::Xml(_))
    ));
    assert_eq!(
        import("account.1.enable = 1\n", Some(Vendor::Yealink), None).unwrap_err(),
        ImportError::NothingFound(Vendor::Yealink)
    );
    let big = "#".repeat(IMPORT_FILE_CAP + 1);
    assert_eq!(import(&big, None, None).unwrap_err(), ImportError::TooLarge);
}

#[test]
fn the_report_is_bounded() {
    let mut text = String::from("#!version:1.0.0.1\n");
    for n in 0..(MAX_FINDINGS * 2) {
        text.push_str(&format!("action_url.x{n} = http://h/\n"));
    }
    let i = import(&text, None, None);
    // Nothing importable, but every one reported (bounded).
    assert!(i.is_err() || i.unwrap().report.len() <= MAX_FINDINGS + 1);
    text.push_str("action_url.hold = http://h/hold\n");
    let i = ok(&text, None);
    assert_eq!(i.report.len(), MAX_FINDINGS + 1);
    assert!(has(&i, "more findings not shown"));
}

#[test]
fn garbage_never_panics_and_every_success_checks() {
    let pieces = [
        "action_url.incoming_call",
        "action_incoming_url",
        "<P8310>",
        "</P8310>",
        "<settings>",
        "<phone-settings>",
        "</phone-settings>",
        "</settings>",
        "<gs_provision>",
        "<config version=\"1\">",
        "</config>",
        "=",
        ":",
        "$",
        "$remote",
        "${",
        "$call-id",
        "http://",
        "h/",
        "&amp;",
        "&",
        "\n",
        " ",
        "\"",
        "#!version:1",
        "é",
        "\u{0}",
        "<!--",
        "-->",
        "%",
        "@",
        "u:p@",
        "$$",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        let mut s = String::new();
        for _ in 0..(seed % 30) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        seed = seed.wrapping_add(1);
        for from in [
            None,
            Some(Vendor::Yealink),
            Some(Vendor::Snom),
            Some(Vendor::Grandstream),
        ] {
            if let Ok(i) = import(&s, from, None) {
                assert!(Config::from_json(&i.config_json).is_ok(), "{s:?}");
            }
        }
    }
}
