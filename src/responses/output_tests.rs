//! Answers and stream events from recorded Gemini bodies.

use rand::SeedableRng;
use serde_json::{json, Value};

use super::*;
use crate::gemini::sse::SseDecoder;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/it/fixtures/gemini/", $name))
    };
}

fn meta(show_thinking: bool) -> ResponseMeta {
    let echoed = EchoedFields::of_object(r#"{"store":true}"#.to_owned());
    ResponseMeta { id: "resp_test".into(), created_at: 42, model: "gpt-5".into(), show_thinking, echoed }
}

fn builder(show_thinking: bool, silent: bool) -> OutputBuilder {
    let rng = StdRng::seed_from_u64(7);
    if silent {
        OutputBuilder::silent(meta(show_thinking), rng)
    } else {
        OutputBuilder::new(meta(show_thinking), rng)
    }
}

/// `(type, data)` of the events in `bytes`, checking the SSE framing and
/// that `type` matches the `event:` line.
fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split_terminator("\n\n")
        .map(|block| {
            let (event, data) = block.split_once('\n').expect("event and data lines");
            let kind = event.strip_prefix("event: ").expect("event line").to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line")).unwrap();
            assert_eq!(data["type"], kind.as_str());
            (kind, data)
        })
        .collect()
}

struct Outcome {
    events: Vec<(String, Value)>,
    end: Result<Value, StreamEnd>,
    remembered: Vec<(String, String)>,
}

/// Pushes every event of an SSE fixture (or one whole answer), then finishes.
fn run(payloads: &[&str], show_thinking: bool, whole: bool) -> Outcome {
    let mut builder = builder(show_thinking, false);
    let mut out = Vec::new();
    let mut remembered = Vec::new();
    builder.opening(&mut out);
    for payload in payloads {
        let event: GenerateContentResponse = serde_json::from_str(payload).unwrap();
        builder.push(&event, &mut |call_id, signature| remembered.push((call_id.into(), signature.into())), &mut out);
    }
    let end = builder.finish(whole, &mut out).map(|json| serde_json::from_str(&json).unwrap());
    let events = events(&out);
    for (index, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], index as u64, "numbered from 0, one by one");
    }
    Outcome { events, end, remembered }
}

fn sse(text: &str) -> Vec<String> {
    let mut decoder = SseDecoder::default();
    let mut payloads = decoder.feed(text.as_bytes());
    payloads.extend(decoder.finish());
    payloads
}

fn kinds(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(kind, _)| kind.as_str()).collect()
}

fn without_ids(mut value: Value) -> Value {
    for item in value["output"].as_array_mut().into_iter().flatten() {
        for field in ["id", "call_id"] {
            if item.get(field).is_some() {
                item[field] = json!("<id>");
            }
        }
    }
    value
}

#[test]
fn a_text_answer_is_one_message_and_a_completed_response() {
    let outcome = run(&[fixture!("response-text.json")], false, true);
    assert_eq!(
        kinds(&outcome.events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let response = outcome.end.unwrap();
    assert_eq!(
        without_ids(response.clone()),
        json!({
            "id": "resp_test", "object": "response", "created_at": 42, "status": "completed",
            "error": null, "incomplete_details": null, "model": "gpt-5", "store": true,
            "output": [{"id": "<id>", "type": "message", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": "Hello! How can I help you today?",
                                     "annotations": [], "logprobs": []}]}],
            "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 9,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 21},
        })
    );
    assert_eq!(outcome.events.last().unwrap().1["response"], response);
    // The created event has no output and no usage yet.
    assert_eq!(outcome.events[0].1["response"]["status"], "in_progress");
    assert_eq!(outcome.events[0].1["response"]["usage"], Value::Null);
}

#[test]
fn a_silent_builder_makes_the_same_response_without_events() {
    let mut silent = builder(false, true);
    let mut out = Vec::new();
    let event: GenerateContentResponse = serde_json::from_str(fixture!("response-function-call.json")).unwrap();
    silent.push(&event, &mut |_, _| {}, &mut out);
    let quiet: Value = serde_json::from_str(&silent.finish(true, &mut out).unwrap()).unwrap();
    assert!(out.is_empty());
    let loud = run(&[fixture!("response-function-call.json")], false, true).end.unwrap();
    assert_eq!(quiet, loud, "same ids from the same seed, same items");
}

#[test]
fn parallel_calls_follow_a_reasoning_item_with_the_signature_and_only_the_first_is_remembered() {
    let outcome = run(&[fixture!("response-function-call.json")], false, true);
    let response = outcome.end.unwrap();
    let output = response["output"].as_array().unwrap();
    assert_eq!(output.len(), 3);
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[0]["summary"], json!([]));
    let signature = output[0]["encrypted_content"].as_str().unwrap();
    assert!(signature.starts_with("CiIBVKhc7oDPpCaXyJKKssjqr4g3JNOSgJ"));
    assert_eq!(output[1]["type"], "function_call");
    assert_eq!(output[1]["name"], "get_weather");
    assert_eq!(output[1]["arguments"], r#"{"city":"Paris","unit":"celsius"}"#);
    assert_eq!(output[2]["name"], "get_time");
    assert_eq!(outcome.remembered, vec![(output[1]["call_id"].as_str().unwrap().to_owned(), signature.to_owned())]);
    let kinds = kinds(&outcome.events);
    let arguments: Vec<&Value> = outcome
        .events
        .iter()
        .filter(|(kind, _)| kind == "response.function_call_arguments.done")
        .map(|(_, data)| &data["arguments"])
        .collect();
    assert_eq!(arguments.len(), 2);
    assert_eq!(kinds.iter().filter(|kind| **kind == "response.output_item.done").count(), 3);
    // Each item's events name its place in the output.
    for (_, data) in outcome.events.iter().filter(|(kind, _)| kind.starts_with("response.output_item")) {
        let index = data["output_index"].as_u64().unwrap() as usize;
        assert_eq!(data["item"]["id"], output[index]["id"]);
    }
    assert_eq!(response["usage"]["output_tokens"], 90, "thoughts count as output");
    assert_eq!(response["usage"]["output_tokens_details"]["reasoning_tokens"], 60);
}

#[test]
fn a_real_stream_gives_deltas_then_the_same_items() {
    let payloads = sse(fixture!("stream-text.sse"));
    let payloads: Vec<&str> = payloads.iter().map(String::as_str).collect();
    let outcome = run(&payloads, false, false);
    let response = outcome.end.unwrap();
    let deltas: String = outcome
        .events
        .iter()
        .filter(|(kind, _)| kind == "response.output_text.delta")
        .map(|(_, data)| data["delta"].as_str().unwrap())
        .collect();
    assert!(outcome.events.iter().filter(|(kind, _)| kind == "response.output_text.delta").count() > 1);
    assert_eq!(response["output"][0]["content"][0]["text"], deltas.as_str());
    let done = outcome.events.iter().find(|(kind, _)| kind == "response.output_text.done").unwrap();
    assert_eq!(done.1["text"], deltas.as_str());
}

#[test]
fn thoughts_are_summaries_only_when_shown() {
    let payloads = sse(fixture!("stream-thinking.sse"));
    let payloads: Vec<&str> = payloads.iter().map(String::as_str).collect();
    let shown = run(&payloads, true, false);
    let response = shown.end.unwrap();
    assert_eq!(response["output"][0]["type"], "reasoning");
    assert_eq!(
        response["output"][0]["summary"],
        json!([{"type": "summary_text", "text": "**Considering the question**\n\nThe user asks for a sum."}])
    );
    assert_eq!(response["output"][1]["content"][0]["text"], "2 + 2 = 4.");
    let kinds = kinds(&shown.events);
    let position = |kind: &str| kinds.iter().position(|seen| *seen == kind).unwrap();
    assert!(position("response.reasoning_summary_part.added") < position("response.reasoning_summary_text.delta"));
    assert!(position("response.reasoning_summary_part.done") < position("response.content_part.added"));
    let hidden = run(&payloads, false, false);
    let response = hidden.end.unwrap();
    assert_eq!(response["output"].as_array().unwrap().len(), 1);
    assert_eq!(response["output"][0]["type"], "message");
}

#[test]
fn a_text_answers_signature_follows_its_message() {
    let events = [
        r#"{"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}]}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":"lo","thoughtSignature":"sig-last"}],"role":"model"},"finishReason":"STOP","index":0}]}"#,
    ];
    let response = run(&events, false, false).end.unwrap();
    let output = response["output"].as_array().unwrap();
    assert_eq!(output[0]["content"][0]["text"], "Hello");
    assert_eq!(output[1]["type"], "reasoning");
    assert_eq!(output[1]["encrypted_content"], "sig-last");
    // Shown thoughts carry the signature that closes them.
    let thoughts = [
        r#"{"candidates":[{"content":{"parts":[{"text":"hmm","thought":true,"thoughtSignature":"sig-thought"},{"functionCall":{"name":"f","args":{}}}],"role":"model"},"finishReason":"STOP","index":0}]}"#,
    ];
    let response = run(&thoughts, true, true).end.unwrap();
    assert_eq!(response["output"][0]["encrypted_content"], "sig-thought");
    assert_eq!(response["output"][0]["summary"][0]["text"], "hmm");
    assert_eq!(response["output"][1]["type"], "function_call");
    assert_eq!(response["output"].as_array().unwrap().len(), 2);
}

#[test]
fn stops_short_of_an_answer_are_incomplete_and_broken_streams_are_told() {
    let outcome = run(&[fixture!("response-max-tokens.json")], false, true);
    assert_eq!(outcome.events.last().unwrap().0, "response.incomplete");
    let response = outcome.end.unwrap();
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["incomplete_details"], json!({"reason": "max_output_tokens"}));
    let filtered = [r#"{"candidates":[{"content":{"parts":[{"text":"Partial"}]},"finishReason":"SAFETY","index":0}]}"#];
    let response = run(&filtered, false, false).end.unwrap();
    assert_eq!(response["incomplete_details"], json!({"reason": "content_filter"}));

    let payloads = sse(fixture!("stream-truncated.sse"));
    let payloads: Vec<&str> = payloads.iter().map(String::as_str).collect();
    assert_eq!(run(&payloads, false, false).end.unwrap_err(), StreamEnd::Truncated);
    assert_eq!(run(&[fixture!("response-finish-safety.json")], false, true).end.unwrap_err(), StreamEnd::Empty);
    let thoughts_only =
        [r#"{"candidates":[{"content":{"parts":[{"text":"hmm","thought":true}]},"finishReason":"STOP","index":0}]}"#];
    assert_eq!(run(&thoughts_only, true, false).end.unwrap_err(), StreamEnd::Empty);
}

#[test]
fn a_failure_is_response_failed_and_a_restart_keeps_the_numbering() {
    let mut builder = builder(false, false);
    let mut out = Vec::new();
    builder.opening(&mut out);
    let mut builder = builder.restarted();
    assert!(!builder.has_output());
    let event: GenerateContentResponse = serde_json::from_str(
        r#"{"candidates":[{"content":{"parts":[{"text":"Once"}]},"index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}"#,
    )
    .unwrap();
    builder.push(&event, &mut |_, _| {}, &mut out);
    assert!(builder.has_output());
    assert_eq!(builder.usage(), (3, 1));
    builder.fail("server_error", "cut off", &mut out);
    let events = events(&out);
    for (index, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], index as u64);
    }
    let (kind, data) = events.last().unwrap();
    assert_eq!(kind, "response.failed");
    assert_eq!(data["response"]["status"], "failed");
    assert_eq!(data["response"]["error"], json!({"code": "server_error", "message": "cut off"}));
}

/// A body already written.
struct Raw(&'static str);

impl WriteJson for Raw {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }
}

#[test]
fn an_event_body_gets_its_number_and_type_appended_in_place() {
    let mut sequence = 7;
    let mut out = Vec::new();
    emit_body(&mut sequence, false, &mut out, "response.x", &Raw(r#"{"a":"}"}"#));
    emit_body(&mut sequence, false, &mut out, "response.y", &Raw("{}"));
    emit_body(&mut sequence, true, &mut out, "response.z", &Raw(r#"{"b":1}"#));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "event: response.x\ndata: {\"a\":\"}\",\"sequence_number\":7,\"type\":\"response.x\"}\n\n\
         event: response.y\ndata: {\"sequence_number\":8,\"type\":\"response.y\"}\n\n"
    );
    assert_eq!(sequence, 10, "a silent builder numbers events it does not write");
}

#[test]
fn deltas_are_written_by_hand_as_serde_writes_them() {
    for text in ["", "Hello", "line\nand \"quote\" 你好 \u{1}"] {
        for index in [0, 7, 12_345] {
            let mut by_hand = Vec::new();
            let delta =
                TextDelta { item_id: "msg_\"1\"", output_index: index, content_index: 0, delta: text, logprobs: [] };
            delta.write_json(&mut by_hand);
            assert_eq!(by_hand, serde_json::to_vec(&delta).unwrap());
            let mut by_hand = Vec::new();
            let summary = SummaryDelta { item_id: "rs_1", output_index: index, summary_index: 0, delta: text };
            summary.write_json(&mut by_hand);
            assert_eq!(by_hand, serde_json::to_vec(&summary).unwrap());
        }
    }
}

/// What `WriteJson` wrote and what serde_json writes for `value`.
fn both_ways<T: WriteJson + Serialize>(value: &T) -> (String, String) {
    let mut by_hand = Vec::new();
    value.write_json(&mut by_hand);
    (String::from_utf8(by_hand).unwrap(), serde_json::to_string(value).unwrap())
}

#[test]
fn objects_items_and_parts_are_written_by_hand_as_serde_writes_them() {
    for text in ["", "Hello", "line\nand \"quote\" \\ 你好 \u{1}\u{7f}\u{202e}"] {
        let id = format!("msg_{text}");
        let items = [
            Item::message(id.clone(), IN_PROGRESS, None),
            Item::message(id.clone(), COMPLETED, Some(text.to_owned())),
            Item::FunctionCall {
                id: id.clone(),
                status: COMPLETED,
                call_id: format!("call_{text}"),
                name: text.to_owned(),
                arguments: format!("{{\"q\":{:?}}}", text),
            },
            Item::Reasoning { id: id.clone(), summary: text.to_owned(), encrypted_content: None },
            Item::Reasoning { id: id.clone(), summary: String::new(), encrypted_content: Some(text.to_owned()) },
        ];
        for (index, item) in items.iter().enumerate() {
            let (by_hand, serde) = both_ways(item);
            assert_eq!(by_hand, serde);
            let (by_hand, serde) = both_ways(&ItemEvent { output_index: index * 1000, item });
            assert_eq!(by_hand, serde);
        }
        let checks = [
            both_ways(&PartEvent { item_id: &id, output_index: 3, content_index: 0, part: OutputText::of(text) }),
            both_ways(&TextDone { item_id: &id, output_index: 3, content_index: 0, text, logprobs: [] }),
            both_ways(&SummaryPartEvent {
                item_id: &id,
                output_index: 0,
                summary_index: 0,
                part: SummaryText::of(text),
            }),
            both_ways(&SummaryTextDone { item_id: &id, output_index: 12, summary_index: 0, text }),
            both_ways(&ArgumentsDelta { item_id: &id, output_index: 1, delta: text }),
            both_ways(&ArgumentsDone { item_id: &id, output_index: 1, name: text, arguments: text }),
        ];
        for (by_hand, serde) in checks {
            assert_eq!(by_hand, serde);
        }
        let usage = UsageMetadata {
            prompt_token_count: 3,
            candidates_token_count: 5,
            thoughts_token_count: 7,
            total_token_count: u64::MAX,
        };
        for (status, error, incomplete, usage) in [
            (IN_PROGRESS, None, None, None),
            ("failed", Some(ErrorBody { code: text, message: text }), None, Some(Usage::of(&usage))),
            ("incomplete", None, Some(Incomplete { reason: "max_output_tokens" }), Some(Usage::of(&usage))),
        ] {
            let core = ResponseCore {
                id: &id,
                object: "response",
                created_at: -1,
                status,
                error,
                incomplete_details: incomplete,
                model: text,
                output: &items,
                usage,
            };
            let (by_hand, serde) = both_ways(&core);
            assert_eq!(by_hand, serde);
        }
    }
}
