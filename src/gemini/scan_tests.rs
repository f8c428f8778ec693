use super::*;

macro_rules! fixture {
    ($name:literal) => {
        ($name, include_str!(concat!("../../tests/it/fixtures/gemini/", $name)))
    };
}

/// Every recorded answer, stream and error body.
const FIXTURES: &[(&str, &str)] = &[
    fixture!("response-finish-safety.json"),
    fixture!("response-function-call.json"),
    fixture!("response-grounded-search.json"),
    fixture!("response-max-tokens.json"),
    fixture!("response-prompt-blocked.json"),
    fixture!("response-text.json"),
    fixture!("response-thinking-signed.json"),
    fixture!("response-thinking.json"),
    fixture!("stream-empty-stop.sse"),
    fixture!("stream-function-call.sse"),
    fixture!("stream-text.sse"),
    fixture!("stream-thinking-signed.sse"),
    fixture!("stream-thinking.sse"),
    fixture!("stream-truncated.sse"),
    fixture!("error-400-api-key-invalid.json"),
    fixture!("error-429-per-day.json"),
    fixture!("error-503-overloaded.json"),
    fixture!("vertex-error-429-array.json"),
];

/// The JSON bodies of the fixtures: a whole file, or each `data:` event.
fn bodies() -> Vec<(String, String)> {
    let mut bodies = Vec::new();
    for (name, text) in FIXTURES {
        if name.ends_with(".sse") {
            let events = text.lines().filter_map(|line| line.strip_prefix("data: "));
            bodies.extend(events.enumerate().map(|(at, event)| (format!("{name} event {at}"), event.to_owned())));
        } else {
            bodies.push((name.to_string(), text.to_string()));
        }
    }
    bodies
}

/// The scan's one promise: when it reads `json`, serde reads the same.
fn assert_agrees(name: &str, json: &[u8]) -> bool {
    let Some(scanned) = response(json) else { return false };
    match serde_json::from_slice::<GenerateContentResponse>(json) {
        Ok(parsed) => assert_eq!(scanned, parsed, "{name}: {}", String::from_utf8_lossy(json)),
        Err(error) => panic!("{name}: the scan read what serde refuses ({error}): {}", String::from_utf8_lossy(json)),
    }
    true
}

#[test]
fn reads_the_common_shapes_as_serde_does() {
    let mut read = Vec::new();
    for (name, body) in bodies() {
        if assert_agrees(&name, body.as_bytes()) {
            read.push(name);
        }
    }
    for expected in [
        "response-text.json",
        "response-thinking.json",
        "response-thinking-signed.json",
        "response-max-tokens.json",
        "response-finish-safety.json",
        "stream-text.sse event 0",
        "stream-text.sse event 2",
        "stream-thinking.sse event 1",
        "stream-thinking-signed.sse event 3",
        "stream-empty-stop.sse event 0",
    ] {
        assert!(read.iter().any(|name| name == expected), "{expected} is not scanned; scanned: {read:?}");
    }
    for left_to_serde in
        ["response-function-call.json", "response-grounded-search.json", "response-prompt-blocked.json"]
    {
        assert!(!read.iter().any(|name| name == left_to_serde), "{left_to_serde} should be left to serde");
    }
}

#[test]
fn from_json_answers_like_serde_for_every_fixture() {
    for (name, body) in bodies() {
        let ours = GenerateContentResponse::from_json(body.as_bytes());
        let serde = serde_json::from_str::<GenerateContentResponse>(&body);
        match (ours, serde) {
            (Ok(ours), Ok(serde)) => assert_eq!(ours, serde, "{name}"),
            (Err(_), Err(_)) => {}
            (ours, serde) => panic!("{name}: {ours:?} against serde's {serde:?}"),
        }
    }
}

#[test]
fn edge_cases_are_read_exactly_or_left_to_serde() {
    // (body, whether the scan reads it)
    let cases: &[(&str, bool)] = &[
        (r#"{}"#, true),
        (r#"  {"candidates" : [ ] }  "#, true),
        (" \t\r\n{\"candidates\":[{\"index\":3}]}\n", true),
        (r#"{"candidates":[{"content":{"parts":[{"text":"a\"b\\c\/d\b\f\n\r\t"}]}}]}"#, true),
        (r#"{"candidates":[{"content":{"parts":[{"text":"caf\u00e9 \u00E9 \ud83d\ude00 \u0000"}]}}]}"#, true),
        (r#"{"candidates":[{"content":{"parts":[{"text":"héllo 😀"}]}}]}"#, true),
        (r#"{"x":{"a":[1,-2.5e+3,0.0,1E9,true,false,null,"s\u0041",{}],"b":[]},"candidates":[]}"#, true),
        (r#"{"candidates":[{"safetyRatings":[{"blocked":true}],"avgLogprobs":-0.123,"citationMetadata":{}}]}"#, true),
        (
            r#"{"usageMetadata":{"promptTokenCount":18446744073709551615,"promptTokensDetails":[{"modality":"TEXT","tokenCount":5}]}}"#,
            true,
        ),
        (r#"{"candidates":[{"content":{"parts":[{"text":"x","videoMetadata":{"fps":1}}],"role":"model"}}]}"#, true),
        (r#"{"candidates":[{"content":{"role":"model"},"finishReason":"MAX_TOKENS"}]}"#, true),
        // Roles: Gemini's two borrowed (an escaped one too), any other owned.
        (
            r#"{"candidates":[{"content":{"role":"user"}},{"content":{"role":"mod\u0065l"}},{"content":{"role":"tool"}}]}"#,
            true,
        ),
        (r#"{"candidates":[{"content":{"parts":[{"text":"x","thought":false}]}}],"x":1}"#, true),
        // Left to serde: it has an answer the scan does not give itself.
        (r#"{"usageMetadata":{"promptTokenCount":18446744073709551616}}"#, false),
        (r#"{"usageMetadata":{"promptTokenCount":1.0}}"#, false),
        (r#"{"usageMetadata":{"promptTokenCount":-1}}"#, false),
        (r#"{"usageMetadata":{"promptTokenCount":1e2}}"#, false),
        (r#"{"usageMetadata":{"promptTokenCount":01}}"#, false),
        (r#"{"usageMetadata":{"promptTokenCount":1,"promptTokenCount":2}}"#, false),
        (r#"{"candidates":[],"candidates":[]}"#, false),
        (r#"{"candidates":[{"index":0,"index":1}]}"#, false),
        (r#"{"candidates":[{"index":4294967296}]}"#, false),
        (r#"{"candidates":[{"content":null}]}"#, false),
        (r#"{"candidates":[{"finishReason":null}]}"#, false),
        (r#"{"candidates":null}"#, false),
        (r#"{"candidates":[{"content":{"parts":[{"text":"a","text":"b"}]}}]}"#, false),
        (r#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"AA=="}}]}}]}"#, false),
        (r#"{"candidates":[{"groundingMetadata":{}}]}"#, false),
        (r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#, false),
        (r#"{"candid\u0061tes":[]}"#, false),
        (r#"{"candidates":[{"content":{"parts":[{"text":"\ud83d"}]}}]}"#, false),
        (r#"{"candidates":[{"content":{"parts":[{"text":"\ude00"}]}}]}"#, false),
        (r#"{"candidates":[{"content":{"parts":[{"text":"\x"}]}}]}"#, false),
        (r#"{"candidates":[{"content":{"parts":[{"text":"\u12"}]}}]}"#, false),
        ("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\tb\"}]}}]}", false),
        (r#"{"candidates":[],}"#, false),
        (r#"{"candidates":[,]}"#, false),
        (r#"{"candidates":[]} x"#, false),
        (r#"{"candidates":[]"#, false),
        (r#"[[]]"#, false),
        (r#"{"x":01}"#, false),
        (r#"{"x":1.}"#, false),
        (r#"{"x":-}"#, false),
        (r#"{"x":1e}"#, false),
        (r#"{"x":tru}"#, false),
        (r#"{"x":truex}"#, false),
        (r#"{"x":nul}"#, false),
        (r#"{"x" 1}"#, false),
        (r#"{"x":'a'}"#, false),
        ("", false),
    ];
    for (body, scanned) in cases {
        assert_eq!(assert_agrees(body, body.as_bytes()), *scanned, "{body}");
        // from_json agrees with serde whether or not the scan read it.
        let ours = GenerateContentResponse::from_json(body.as_bytes()).map_err(drop);
        assert_eq!(ours, serde_json::from_str::<GenerateContentResponse>(body).map_err(drop), "{body}");
    }
    let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
    assert!(!assert_agrees("deep", deep.as_bytes()));
    let invalid_utf8 = b"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\xff\"}]}}]}";
    assert!(!assert_agrees("invalid UTF-8", invalid_utf8));
    let invalid_utf8_skipped = b"{\"x\":\"\xc3\"}";
    assert!(!assert_agrees("invalid UTF-8 in a skipped value", invalid_utf8_skipped));
}

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Noise(u64);

impl Noise {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound
    }
}

#[test]
fn damaged_bodies_are_read_as_serde_reads_them_or_left_to_it() {
    const PIECES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b",",
        b":",
        b" ",
        b"\\",
        b"\\u00e9",
        b"\\ud83d",
        b"0",
        b"7",
        b"-",
        b".",
        b"e",
        b"null",
        b"true",
        b"\"text\":",
        b"\"x\":1,",
        b"\xc3",
        b"\xc3\xa9",
        b"\xe4\xbd\xa0",
        b"\t",
        b"\n",
        b"\x01",
    ];
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut read = 0;
    for (name, body) in bodies() {
        let body = body.into_bytes();
        for cut in 0..body.len() {
            assert_agrees(&name, &body[..cut]);
        }
        for _ in 0..3_000 {
            let mut damaged = body.clone();
            for _ in 0..=noise.below(3) {
                let at = noise.below(damaged.len() + 1);
                match noise.below(3) {
                    0 if at < damaged.len() => {
                        damaged.remove(at);
                    }
                    1 if at < damaged.len() => {
                        damaged[at] = PIECES[noise.below(PIECES.len())][0];
                    }
                    _ => {
                        let piece = PIECES[noise.below(PIECES.len())];
                        damaged.splice(at..at, piece.iter().copied());
                    }
                }
            }
            read += usize::from(assert_agrees(&name, &damaged));
        }
    }
    // The damage leaves many bodies readable: the comparison is not vacuous.
    assert!(read > 10_000, "only {read} damaged bodies were read by the scan");
}

/// Gemini's own roles and finish reasons are borrowed, not allocated per
/// answer or event (an escaped one too); any other is carried, owned.
#[test]
fn known_roles_and_finish_reasons_are_borrowed_others_owned() {
    let body = r#"{"candidates":[{"content":{"role":"mod\u0065l"},"finishReason":"STOP"},{"content":{"role":"user"},"finishReason":"MAX_TOKENS"},{"content":{"role":"tool"},"finishReason":"A_NEW_REASON"}]}"#;
    let answer = GenerateContentResponse::from_json(body.as_bytes()).expect("an answer");
    let read: Vec<_> = answer
        .candidates
        .iter()
        .map(|candidate| {
            let role = candidate.content.as_ref().and_then(|content| content.role.clone()).expect("a role");
            (role, candidate.finish_reason.clone().expect("a finish reason"))
        })
        .collect();
    let borrowed = |text: &Cow<'static, str>| matches!(text, Cow::Borrowed(_));
    assert_eq!(
        read.iter().map(|(role, reason)| (&**role, &**reason)).collect::<Vec<_>>(),
        [("model", "STOP"), ("user", "MAX_TOKENS"), ("tool", "A_NEW_REASON")]
    );
    assert_eq!(
        read.iter().map(|(role, reason)| (borrowed(role), borrowed(reason))).collect::<Vec<_>>(),
        [(true, true), (true, true), (false, false)]
    );
}
