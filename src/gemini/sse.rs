//! Incremental decoder for `text/event-stream` bodies, used on every streamed
//! upstream answer (`streamGenerateContent?alt=sse`). It follows the WHATWG
//! event-stream parsing rules: lines end with `\r\n`, `\n` or `\r` (also when
//! a `\r\n` pair is split across two network chunks), a blank line dispatches
//! the event, `data:` lines are joined with `\n`, comments and other fields are
//! ignored. It works on bytes so that UTF-8 sequences split across chunks are
//! reassembled before decoding. It does no I/O: the caller feeds the bytes.
//!
//! [`SseDecoder::feed_each`] copies nothing in the usual case: an event whose
//! one `data` line arrived whole in the bytes fed is handed over as a slice of
//! them. Only a line split across reads, or an event of several `data` lines,
//! is gathered in the decoder's buffers (kept from event to event).

use std::borrow::Cow;

/// State carried between calls to [`SseDecoder::feed_each`].
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of a line whose terminator has not arrived yet.
    partial_line: Vec<u8>,
    /// `data` values of the event being built, each followed by `\n`.
    data_buffer: Vec<u8>,
    /// Whether at least one `data` field was gathered in `data_buffer`.
    event_has_data: bool,
    /// The last byte seen was a `\r`; a `\n` right after it belongs to the
    /// same line ending.
    last_byte_was_carriage_return: bool,
    /// The start of the stream is behind us (a leading BOM is only skipped
    /// at the very start).
    past_stream_start: bool,
    /// An event grew past [`MAX_EVENT_BYTES`]; the stream is unusable.
    oversized: bool,
}

/// Largest event accepted (an inline generated image is a few MB of
/// base64); a stream sending more without a line end is broken or hostile.
pub const MAX_EVENT_BYTES: usize = 32 * 1024 * 1024;

/// A gathering buffer that grew past this (a large event) is let go after
/// its event.
const KEPT_BUFFER_BYTES: usize = 64 * 1024;

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// What one line of the stream is.
enum Line<'a> {
    /// Dispatches the event.
    Blank,
    /// A `data` field's value.
    Data(&'a [u8]),
    /// A comment or another field.
    Ignored,
}

impl<'a> Line<'a> {
    fn of(line: &'a [u8]) -> Line<'a> {
        if line.is_empty() {
            return Line::Blank;
        }
        if line[0] == b':' {
            return Line::Ignored;
        }
        let (field_name, field_value) = match memchr::memchr(b':', line) {
            Some(colon_position) => {
                let value = &line[colon_position + 1..];
                (&line[..colon_position], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        // `event`, `id`, `retry` and unknown fields mean nothing to Gemini
        // streams and are ignored.
        if field_name == b"data" {
            Line::Data(field_value)
        } else {
            Line::Ignored
        }
    }
}

impl SseDecoder {
    /// Feed raw bytes (arbitrary boundaries, may split UTF-8 sequences and
    /// line endings); returns the `data` payload of every event completed by
    /// these bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut completed_payloads = Vec::new();
        let _ = self.feed_each(bytes, |payload| {
            completed_payloads.push(payload.to_owned());
            Ok::<(), std::convert::Infallible>(())
        });
        completed_payloads
    }

    /// Feed raw bytes, as [`feed`](Self::feed), handing the `data` payload
    /// of every event they complete to `each`, in order, borrowed (from
    /// `bytes` when the event arrived whole in them). Stops at the first
    /// error `each` returns (the stream is then given up).
    pub fn feed_each<E>(&mut self, bytes: &[u8], mut each: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        // The event's one `data` value so far, still in `bytes`.
        let mut pending: Option<&[u8]> = None;
        let mut remaining = self.skip_byte_order_mark(bytes);
        if self.last_byte_was_carriage_return && !remaining.is_empty() {
            self.last_byte_was_carriage_return = false;
            if remaining[0] == b'\n' {
                remaining = &remaining[1..];
            }
        }
        // memchr2 looks at a word or a vector of bytes at a time: a
        // streamed answer is mostly long `data:` lines.
        while let Some(terminator_position) = memchr::memchr2(b'\n', b'\r', remaining) {
            let line_tail = &remaining[..terminator_position];
            if self.partial_line.is_empty() {
                match Line::of(line_tail) {
                    Line::Blank => self.dispatch(&mut pending, &mut each)?,
                    Line::Data(value) if pending.is_none() && !self.event_has_data => pending = Some(value),
                    Line::Data(value) => self.gather(&mut pending, value),
                    Line::Ignored => {}
                }
            } else {
                let mut whole_line = std::mem::take(&mut self.partial_line);
                whole_line.extend_from_slice(line_tail);
                let dispatched = self.owned_line(&whole_line, &mut pending, &mut each);
                // Keep the allocation for the next partial line.
                whole_line.clear();
                self.partial_line = whole_line;
                dispatched?;
            }
            let terminator = remaining[terminator_position];
            remaining = &remaining[terminator_position + 1..];
            if terminator == b'\r' {
                match remaining.first() {
                    Some(b'\n') => remaining = &remaining[1..],
                    Some(_) => {}
                    None => self.last_byte_was_carriage_return = true,
                }
            }
        }
        // The event goes on in later bytes: its data is kept.
        self.materialize(&mut pending);
        self.partial_line.extend_from_slice(remaining);
        if self.partial_line.len() + self.data_buffer.len() > MAX_EVENT_BYTES {
            self.oversized = true;
            self.partial_line = Vec::new();
            self.data_buffer = Vec::new();
        }
        Ok(())
    }

    /// Whether an event exceeded [`MAX_EVENT_BYTES`] (its bytes were
    /// dropped; the caller should treat the stream as failed).
    pub fn is_oversized(&self) -> bool {
        self.oversized
    }

    /// At EOF: the payload of a final event not terminated by a blank line,
    /// if any (Gemini sometimes omits the last separator). An unterminated
    /// last line counts as a complete line. The decoder is reset afterwards.
    pub fn finish(&mut self) -> Option<String> {
        let mut last = None;
        let mut keep = |payload: &str| {
            last = Some(payload.to_owned());
            Ok::<(), std::convert::Infallible>(())
        };
        let line = std::mem::take(&mut self.partial_line);
        if !line.is_empty() {
            let _ = self.owned_line(&line, &mut None, &mut keep);
        }
        let _ = self.owned_line(b"", &mut None, &mut keep);
        *self = SseDecoder::default();
        last
    }

    /// A line the decoder put together (not a slice of the bytes fed).
    fn owned_line<E>(
        &mut self,
        line: &[u8],
        pending: &mut Option<&[u8]>,
        each: &mut impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), E> {
        match Line::of(line) {
            Line::Blank => self.dispatch(pending, each),
            Line::Data(value) => {
                self.gather(pending, value);
                Ok(())
            }
            Line::Ignored => Ok(()),
        }
    }

    /// Moves a pending value into the gathered data (followed by `\n`).
    fn materialize(&mut self, pending: &mut Option<&[u8]>) {
        if let Some(value) = pending.take() {
            self.data_buffer.extend_from_slice(value);
            self.data_buffer.push(b'\n');
            self.event_has_data = true;
        }
    }

    /// Adds `value` (after any pending value) to the gathered data.
    fn gather(&mut self, pending: &mut Option<&[u8]>, value: &[u8]) {
        self.materialize(pending);
        self.data_buffer.extend_from_slice(value);
        self.data_buffer.push(b'\n');
        self.event_has_data = true;
    }

    /// A blank line: the event's payload to `each`, if it had data.
    fn dispatch<E>(
        &mut self,
        pending: &mut Option<&[u8]>,
        each: &mut impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(value) = pending.take() {
            return each(&utf8(value));
        }
        if !self.event_has_data {
            return Ok(());
        }
        self.event_has_data = false;
        let mut gathered = std::mem::take(&mut self.data_buffer);
        gathered.pop(); // the `\n` after the last data line
        let result = each(&utf8(&gathered));
        if gathered.capacity() <= KEPT_BUFFER_BYTES {
            gathered.clear();
            self.data_buffer = gathered;
        }
        result
    }

    /// Strips a UTF-8 byte order mark at the very start of the stream, even
    /// when it arrives split across several chunks.
    fn skip_byte_order_mark<'bytes>(&mut self, bytes: &'bytes [u8]) -> &'bytes [u8] {
        if self.past_stream_start || bytes.is_empty() {
            return bytes;
        }
        // Only BOM bytes are held in `partial_line` until the start is past.
        let already_seen = self.partial_line.len();
        let still_expected = BYTE_ORDER_MARK.get(already_seen..).unwrap_or_default();
        let comparable_length = still_expected.len().min(bytes.len());
        if bytes[..comparable_length] != still_expected[..comparable_length] {
            // Not a BOM: whatever was held back is ordinary line content.
            self.past_stream_start = true;
            return bytes;
        }
        if comparable_length == still_expected.len() {
            self.past_stream_start = true;
            self.partial_line.clear();
        } else {
            // Hold the BOM prefix until we know whether it is one.
            self.partial_line.extend_from_slice(&bytes[..comparable_length]);
        }
        &bytes[comparable_length..]
    }
}

/// A payload as text (invalid UTF-8 replaced).
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` checks valid text (every real event) faster than
    // `from_utf8_lossy`, which walks it chunk by chunk.
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::SseDecoder;

    const STREAM_FIXTURES: &[(&str, &str)] = &[
        ("stream-text.sse", include_str!("../../tests/it/fixtures/gemini/stream-text.sse")),
        ("stream-thinking.sse", include_str!("../../tests/it/fixtures/gemini/stream-thinking.sse")),
        ("stream-function-call.sse", include_str!("../../tests/it/fixtures/gemini/stream-function-call.sse")),
        ("stream-truncated.sse", include_str!("../../tests/it/fixtures/gemini/stream-truncated.sse")),
        ("stream-empty-stop.sse", include_str!("../../tests/it/fixtures/gemini/stream-empty-stop.sse")),
    ];

    fn decode_in_pieces(pieces: &[&[u8]]) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut payloads = Vec::new();
        for piece in pieces {
            payloads.extend(decoder.feed(piece));
        }
        payloads.extend(decoder.finish());
        payloads
    }

    /// Decodes `stream` whole, split in two at every byte offset, and one
    /// byte at a time, and checks every way gives `expected_payloads`.
    fn check(stream: &[u8], expected_payloads: &[&str]) {
        let whole = decode_in_pieces(&[stream]);
        assert_eq!(whole, expected_payloads, "fed whole");
        for split_offset in 0..=stream.len() {
            let (head, tail) = stream.split_at(split_offset);
            assert_eq!(decode_in_pieces(&[head, tail]), expected_payloads, "split at byte {split_offset}");
        }
        let single_bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode_in_pieces(&single_bytes), expected_payloads, "fed one byte at a time");
    }

    #[test]
    fn an_event_that_arrived_whole_is_handed_over_without_a_copy() {
        let bytes = b"data: {\"a\":1}\n\ndata: x\ndata: y\n\ndata: split";
        let mut decoder = SseDecoder::default();
        let mut seen = Vec::new();
        let fed = decoder.feed_each(bytes, |payload| {
            seen.push((payload.to_owned(), bytes.as_ptr_range().contains(&payload.as_ptr())));
            Ok::<(), ()>(())
        });
        assert_eq!(fed, Ok(()));
        assert_eq!(seen, [("{\"a\":1}".to_owned(), true), ("x\ny".to_owned(), false)]);
        assert_eq!(decoder.feed(b" event\n\n"), ["split event"]);
    }

    #[test]
    fn an_error_from_the_receiver_stops_the_feed() {
        let mut decoder = SseDecoder::default();
        let mut seen = Vec::new();
        let fed = decoder.feed_each(b"data: 1\n\ndata: 2\n\ndata: 3\n\n", |payload| {
            seen.push(payload.to_owned());
            if payload == "2" {
                Err("unusable")
            } else {
                Ok(())
            }
        });
        assert_eq!((fed, seen), (Err("unusable"), vec!["1".to_owned(), "2".to_owned()]));
    }

    #[test]
    fn an_endless_line_is_cut_off_not_buffered_forever() {
        let mut decoder = SseDecoder::default();
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..(super::MAX_EVENT_BYTES / chunk.len()) {
            assert!(decoder.feed(&chunk).is_empty());
            assert!(!decoder.is_oversized());
        }
        decoder.feed(&chunk);
        assert!(decoder.is_oversized());
    }

    #[test]
    fn stream_fixtures_decode_the_same_at_every_split() {
        for (fixture_name, fixture_text) in STREAM_FIXTURES {
            let expected: Vec<&str> = fixture_text
                .split("\r\n\r\n")
                .filter(|event| !event.is_empty())
                .map(|event| {
                    event.strip_prefix("data: ").unwrap_or_else(|| panic!("{fixture_name}: event without data prefix"))
                })
                .collect();
            assert!(!expected.is_empty(), "{fixture_name} has events");
            for payload in &expected {
                serde_json::from_str::<serde_json::Value>(payload)
                    .unwrap_or_else(|error| panic!("{fixture_name}: {error}"));
            }
            check(fixture_text.as_bytes(), &expected);
        }
    }

    #[test]
    fn line_ending_and_field_rules() {
        let cases: &[(&str, &[u8], &[&str])] = &[
            ("newline separators", b"data: a\n\ndata: b\n\n", &["a", "b"]),
            ("carriage-return separators", b"data: a\r\rdata: b\r\r", &["a", "b"]),
            ("mixed separators", b"data: a\r\n\ndata: b\n\r\n", &["a", "b"]),
            ("multi-line data", b"data: one\ndata: two\r\ndata:three\n\n", &["one\ntwo\nthree"]),
            ("only one leading space stripped", b"data:  x \n\n", &[" x "]),
            ("comments ignored", b": keep-alive\n\n: ping\ndata: a\n\n", &["a"]),
            ("other fields ignored", b"event: message\nid: 7\nretry: 10\ndata: a\n\n", &["a"]),
            ("field without colon", b"data\n\n", &[""]),
            ("event without data not returned", b"event: x\n\n\n\n", &[]),
            ("final event without blank line", b"data: a\n\ndata: b\n", &["a", "b"]),
            ("final line without terminator", b"data: a\n\ndata: b", &["a", "b"]),
            ("byte order mark skipped", b"\xEF\xBB\xBFdata: a\n\n", &["a"]),
            ("split UTF-8 kept intact", "data: 你好 🌍\n\n".as_bytes(), &["你好 🌍"]),
            ("invalid UTF-8 replaced", b"data: \xFF\n\n", &["\u{FFFD}"]),
            ("empty stream", b"", &[]),
        ];
        for (case_name, stream, expected) in cases {
            eprintln!("case: {case_name}");
            check(stream, expected);
        }
    }

    #[test]
    fn carriage_return_at_chunk_end_is_one_line_ending_with_following_newline() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(b"data: a\r").is_empty());
        // `\n` completes the `\r\n` of the data line, `\r\n` is the blank line.
        assert_eq!(decoder.feed(b"\n\r\n"), vec!["a".to_string()]);
        assert_eq!(decoder.finish(), None);
    }

    #[test]
    fn finish_resets_the_decoder() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(b"data: a").is_empty());
        assert_eq!(decoder.finish().as_deref(), Some("a"));
        assert_eq!(decoder.feed(b"data: b\n\n"), vec!["b".to_string()]);
    }
}
