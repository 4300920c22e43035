//! `POST /predict/` requests as docs/contract.md defines them: the query (§1), the content type and size (§1),
//! then the body (§2), each refusal an [`ApiError`] with the contract's status code.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::ApiError;

/// Arrays and objects nested deeper than this are refused (the body's object is depth 1).
pub const MAX_JSON_DEPTH: usize = 32;

/// `?probabilities=...`: the last occurrence counts, absent is `false`, and only the contract's spellings of a
/// boolean (any ASCII case) are accepted.
pub fn probabilities_flag(query: &str) -> Result<bool, ApiError> {
    const TRUE: [&str; 6] = ["true", "1", "yes", "on", "t", "y"];
    const FALSE: [&str; 6] = ["false", "0", "no", "off", "f", "n"];
    let last = form_urlencoded::parse(query.as_bytes()).filter(|(name, _)| name == "probabilities").last();
    let Some((_, value)) = last else {
        return Ok(false);
    };
    let is_one_of = |words: &[&str]| words.iter().any(|word| value.eq_ignore_ascii_case(word));
    if is_one_of(&TRUE) {
        Ok(true)
    } else if is_one_of(&FALSE) {
        Ok(false)
    } else {
        Err(ApiError::Unprocessable(format!(
            "query parameter 'probabilities' must be a boolean (true/false, 1/0, yes/no, on/off, t/f, y/n), got {value:?}"
        )))
    }
}

/// The media type must be `application/json` (parameters such as a charset are ignored; none is wrong).
pub fn require_json(content_type: Option<&[u8]>) -> Result<(), ApiError> {
    let raw = content_type.unwrap_or_default();
    let essence = raw.split(|&b| b == b';').next().unwrap_or_default();
    let media_type = String::from_utf8_lossy(essence).trim().to_ascii_lowercase();
    if media_type == "application/json" {
        return Ok(());
    }
    let shown = if media_type.is_empty() { "none".to_string() } else { media_type };
    Err(ApiError::UnsupportedMediaType(format!("content type must be application/json, got {shown}")))
}

/// A declared `Content-Length` over the limit is refused before the body is read.
pub fn check_declared_length(content_length: Option<&[u8]>, limit: usize) -> Result<(), ApiError> {
    let Some(declared) = content_length else {
        return Ok(());
    };
    if declared.is_empty() || !declared.iter().all(u8::is_ascii_digit) {
        return Ok(()); // not a length: actix-web refuses the request itself
    }
    let text = String::from_utf8_lossy(declared);
    // More digits than fit in 128 bits is over any limit too.
    if text.parse::<u128>().map_or(true, |length| length > limit as u128) {
        return Err(ApiError::PayloadTooLarge(format!("request body is {text} bytes; the limit is {limit}")));
    }
    Ok(())
}

pub fn body_over_limit(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("request body exceeds the limit of {limit} bytes"))
}

/// Brackets and braces open outside strings, at the deepest point, beyond `MAX_JSON_DEPTH`.
pub fn too_deep(body: &[u8]) -> bool {
    // Depth never exceeds the number of openers: most bodies need no scan.
    if body.iter().filter(|&&byte| byte == b'[' || byte == b'{').count() <= MAX_JSON_DEPTH {
        return false;
    }
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte == b'"' {
            in_string = true;
        } else if byte == b'[' || byte == b'{' {
            depth += 1;
            if depth > MAX_JSON_DEPTH {
                return true;
            }
        } else if byte == b']' || byte == b'}' {
            depth = depth.saturating_sub(1);
        }
    }
    false
}

/// Whether a `\u` escape in `json`, a text serde_json has accepted, is a surrogate outside a pair. serde_json
/// refuses those in the strings it reads, but skips the strings of ignored members unchecked; in valid JSON every
/// backslash starts an escape inside a string, so finding them needs no parse.
fn has_lone_surrogate(json: &str) -> bool {
    let unit = |text: &str| text.strip_prefix("\\u").and_then(|hex| u16::from_str_radix(hex.get(..4)?, 16).ok());
    let mut rest = json;
    while let Some(at) = rest.find('\\') {
        rest = &rest[at..];
        match unit(rest) {
            Some(0xD800..=0xDBFF) if matches!(unit(&rest[6..]), Some(0xDC00..=0xDFFF)) => rest = &rest[12..],
            Some(0xD800..=0xDFFF) => return true,
            Some(_) => rest = &rest[6..],
            None => rest = &rest[2..], // a two-character escape
        }
    }
    false
}

/// JSON's whitespace (RFC 8259 §2).
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// The JSON kind of a value, from its first character.
fn kind(value: &RawValue) -> &'static str {
    match value.get().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// What the shape checks (§2.4) need of a body that is JSON.
enum Document<'a> {
    /// An object, with its last `image` member unread (a number there is checked for syntax only).
    Object { image: Option<&'a RawValue> },
    /// Any other value, by its kind.
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Document<'de> {
    /// An object (anything else is an error here: `read_json` reads it as a `RawValue`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Keeps an object's last `image` member; the other members are checked as JSON and skipped.
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Document<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document<'de>, A::Error> {
        let mut image = None;
        // A name that occurs twice: the last occurrence counts.
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            if name == "image" {
                image = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Document::Object { image })
    }
}

/// A JSON string's text, borrowed from the body unless it has escapes.
#[derive(Deserialize)]
#[serde(transparent)]
struct JsonString<'a>(#[serde(borrow)] Cow<'a, str>);

fn not_json(reason: impl fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("request body is not valid JSON: {reason}"))
}

/// The body read as JSON (§2.1–2.3), or the 400 that says why it is not.
fn read_json(body: &[u8]) -> Result<Document<'_>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("request body is empty; send JSON {\"image\": \"<base64>\"}".into()));
    }
    let text = std::str::from_utf8(body).map_err(|error| not_json(format_args!("not UTF-8 ({error})")))?;
    if text.starts_with('\u{FEFF}') {
        return Err(not_json("it starts with a byte order mark"));
    }
    if too_deep(body) {
        return Err(ApiError::BadRequest(format!("request body is nested deeper than {MAX_JSON_DEPTH} levels")));
    }
    // An object is read for its members; any other value only checked (it is refused for its kind).
    let document = if text.trim_start_matches(JSON_WHITESPACE).starts_with('{') {
        serde_json::from_str::<Document>(text)
    } else {
        serde_json::from_str::<&RawValue>(text).map(|value| Document::Other(kind(value)))
    };
    let document = document.map_err(not_json)?;
    if has_lone_surrogate(text) {
        return Err(not_json("a \\u escape is a lone surrogate, not a Unicode character"));
    }
    Ok(document)
}

fn is_json_whitespace(byte: u8) -> bool {
    JSON_WHITESPACE.contains(&char::from(byte))
}

/// `rest` after JSON whitespace and then `expected`, if it is there.
fn after<'a>(rest: &'a [u8], expected: &[u8]) -> Option<&'a [u8]> {
    let start = rest.iter().position(|&byte| !is_json_whitespace(byte))?;
    rest[start..].strip_prefix(expected)
}

/// The image of a body that is exactly `{"image": "<strict base64>"}` (any JSON whitespace), read without the JSON
/// parser; `None` for any other body, which `parse_predict_body` then parses in full.
///
/// Exact, not a second grammar: text that strict base64 accepts holds only `A-Z a-z 0-9 + / =`, so no quote,
/// backslash or control character, and the body is then that one-member object, whose parse gives these bytes.
pub fn one_member_image(body: &[u8]) -> Option<Vec<u8>> {
    let rest = after(body, b"{")?;
    let rest = after(rest, b"\"image\"")?;
    let rest = after(rest, b":")?;
    let text = after(rest, b"\"")?;
    let end = text.iter().rposition(|&byte| !is_json_whitespace(byte))?;
    let text = text[..=end].strip_suffix(b"}")?;
    let end = text.iter().rposition(|&byte| !is_json_whitespace(byte))?;
    let text = text[..=end].strip_suffix(b"\"")?;
    let data = base64_simd::STANDARD.decode_to_vec(text).ok()?;
    (!data.is_empty()).then_some(data)
}

/// The image file bytes of a `{"image": "<base64>"}` body, or what is wrong with it.
pub fn parse_predict_body(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match one_member_image(body) {
        Some(data) => Ok(data),
        None => parsed_image(body),
    }
}

/// The image file bytes of a `{"image": "<base64>"}` body (§2), or what is wrong with it.
fn parsed_image(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let image = match read_json(body)? {
        Document::Other(kind) => {
            return Err(ApiError::Unprocessable(format!("request body must be a JSON object, got {kind}")));
        }
        Document::Object { image: None } => return Err(ApiError::Unprocessable("field 'image' is missing".into())),
        Document::Object { image: Some(image) } => image,
    };
    if kind(image) != "string" {
        let detail = format!("field 'image' must be a base64 string, got {}", kind(image));
        return Err(ApiError::Unprocessable(detail));
    }
    let JsonString(text) = serde_json::from_str(image.get()).map_err(not_json)?;
    if text.is_empty() {
        return Err(ApiError::Unprocessable("field 'image' is empty".into()));
    }
    base64_simd::STANDARD.decode_to_vec(text.as_bytes()).map_err(|_| {
        ApiError::Unprocessable(
            "field 'image' is not strict standard base64 (RFC 4648 §4: A-Z a-z 0-9 + / only, padded with '=' to a \
             multiple of 4 characters, unused bits zero)"
                .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;

    use super::*;

    /// xorshift64*: reproducible random cases without a dependency.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }

        fn pick<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
            items[self.below(items.len())]
        }
    }

    fn encode(data: &[u8]) -> String {
        base64_simd::STANDARD.encode_to_string(data)
    }

    fn status(result: Result<Vec<u8>, ApiError>) -> u16 {
        result.map_or_else(|error| error.status_code().as_u16(), |_| 200)
    }

    /// The status of `body` through `parse_predict_body` and through the full parse alone, which must agree.
    fn status_of(body: &[u8]) -> u16 {
        let status_of_full_parse = status(parsed_image(body));
        assert_eq!(status(parse_predict_body(body)), status_of_full_parse, "{}", String::from_utf8_lossy(body));
        status_of_full_parse
    }

    #[test]
    fn the_body_answers_the_contracts_codes() {
        let deep =
            |levels: usize| format!("{{\"image\": \"QQ==\", \"x\": {}{}}}", "[".repeat(levels), "]".repeat(levels));
        let long_number = "9".repeat(5000);
        let cases: Vec<(Vec<u8>, u16)> = [
            // §2.1 UTF-8 without a byte order mark.
            (&b"{\"image\": \"QQ==\"}\xff"[..], 400),
            (b"{\"image\": \"QQ==\", \"x\": \"\xc3\"}", 400),
            (b"\xef\xbb\xbf{\"image\": \"QQ==\"}", 400),
            (b"{\0\"\0i\0m\0a\0g\0e\0\"\0:\0 \0\"\0Q\0Q\0=\0=\0\"\0}\0", 400),
            (b"\xff\xfe{\0}\0", 400),
            // §2.2 RFC 8259, the whole body one value.
            (b"", 400),
            (b"   ", 400),
            (b"{\"image\": ", 400),
            (b"not json", 400),
            (b"{\"image\": \"QQ==\"} x", 400),
            (b"{\"image\": \"QQ==\"}{}", 400),
            (b"{'image': 'QQ=='}", 400),
            (b"{\"image\": \"QQ==\",}", 400),
            (b"{\"image\": NaN}", 400),
            (b"{\"image\": \"QQ==\", \"x\": Infinity}", 400),
            (b"[-Infinity]", 400),
            (b"{\"image\": \"QQ==\", \"x\": 01}", 400),
            (b"{\"image\": \"QQ==\", \"x\": \"tab\there\"}", 400),
            (b"{\"image\": \"\\ud800\"}", 400),
            (b"{\"image\": \"QQ==\", \"x\": \"\\ud800\"}", 400),
            (b"{\"image\": \"QQ==\", \"x\": [\"\\udc00\"]}", 400),
            (b"{\"image\": \"QQ==\", \"x\": \"\\ud800\\u0041\"}", 400),
            (b"{\"image\": \"QQ==\", \"x\": \"\\ud800\\n\"}", 400),
            (b"{\"image\": \"QQ==\", \"\\udfff\": 1}", 400),
            (b"[\"\\ud800\"]", 400),
            (b"{\"image\": \"QQ==\", \"x\": \"\\ud83d\\ude00 \\\\ud800 \\u00e9\"}", 200),
            (b" \r\n\t{\"image\": \"QQ==\"}\n", 200),
            // §2.4 the shape: an object with an `image`, the last of two, numbers syntax only.
            (b"[]", 422),
            (b"\"QQ==\"", 422),
            (b"42", 422),
            (b"1e999", 422),
            (long_number.as_bytes(), 422),
            (b"null", 422),
            (b"true", 422),
            (b"{}", 422),
            (b"{\"img\": \"QQ==\"}", 422),
            (b"{\"Image\": \"QQ==\"}", 422),
            (b"{\"image\": 5, \"image\": \"QQ==\"}", 200),
            (b"{\"image\": \"QQ==\", \"image\": 5}", 422),
            (b"{\"image\": \"QQ==\", \"x\": 1e999, \"y\": -1E-999}", 200),
            (format!("{{\"image\": \"QQ==\", \"x\": {long_number}.5}}").as_bytes(), 200),
            (b" {\"image\": \"QUJD\", \"other\": [1, {\"a\": null}]} ", 200),
            (b"{\"\\u0069mage\": \"QQ==\"}", 200),
            // §2.5 `image` a non-empty string of strict standard base64.
            (b"{\"image\": null}", 422),
            (b"{\"image\": 12}", 422),
            (b"{\"image\": 1e999}", 422),
            (format!("{{\"image\": {long_number}}}").as_bytes(), 422),
            (b"{\"image\": [\"QQ==\"]}", 422),
            (b"{\"image\": {}}", 422),
            (b"{\"image\": false}", 422),
            (b"{\"image\": \"\"}", 422),
            (b"{\"image\": \"\xc3\xa9\"}", 422),
            (b"{\"image\": \"QQ\\u003d\\u003d\"}", 200),
            (b"{\"image\": \"\\/\\/\\/\\/\"}", 200),
            (b"{\"image\": \"QQ==\\n\"}", 422),
        ]
        .into_iter()
        .map(|(body, status)| (body.to_vec(), status))
        .chain([(deep(31).into_bytes(), 200), (deep(32).into_bytes(), 400)])
        .collect();
        for (body, expected) in cases {
            assert_eq!(status_of(&body), expected, "{}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn escapes_give_the_string_they_spell() {
        assert_eq!(parse_predict_body(b"{\"image\": \"QQ\\u003d\\u003d\"}"), Ok(b"A".to_vec()));
        assert_eq!(parse_predict_body(b"{\"image\": \"\\/\\/\\/\\/\"}"), Ok(vec![0xFF; 3]));
        assert_eq!(parse_predict_body(b"{\"image\": 5, \"image\": \"QUJD\"}"), Ok(b"ABC".to_vec()));
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let detail = |body: &[u8]| parse_predict_body(body).unwrap_err().detail();
        assert_eq!(detail(b"[1]"), "request body must be a JSON object, got array");
        assert_eq!(detail(b"{\"image\": null}"), "field 'image' must be a base64 string, got null");
        assert_eq!(detail(b"{\"image\": 1e999}"), "field 'image' must be a base64 string, got number");
        assert_eq!(detail(b"{}"), "field 'image' is missing");
        assert_eq!(detail(b"{\"image\": \"\"}"), "field 'image' is empty");
        assert!(detail(b"{\"image\": \"QQ\"}").starts_with("field 'image' is not strict standard base64"));
        assert!(detail(b"\xef\xbb\xbf{}").ends_with("it starts with a byte order mark"));
        assert!(detail(b"[\"\\udc00\"]").ends_with("a \\u escape is a lone surrogate, not a Unicode character"));
        assert!(detail(b"{\"image\": NaN}").starts_with("request body is not valid JSON: expected value"));
    }

    #[test]
    fn nesting_beyond_32_levels_is_refused() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
        assert!(!too_deep(&nested(32)));
        assert!(too_deep(&nested(33)));
        assert_eq!(status_of(&nested(32)), 422);
        assert_eq!(status_of(&nested(33)), 400);
        let objects = |n: usize| "{\"a\":".repeat(n) + "1" + &"}".repeat(n);
        assert_eq!(status_of(objects(32).as_bytes()), 422);
        assert_eq!(status_of(objects(33).as_bytes()), 400);
        // Deeper is refused whatever else the document holds, even when it is not JSON after that.
        assert!(too_deep(&[nested(33), b"garbage".to_vec()].concat()));
        // Brackets inside strings do not count, escaped quotes do not end strings.
        let in_string = format!("{{\"image\": \"{}\\\"{}\"}}", "[".repeat(40), "{".repeat(40));
        assert!(!too_deep(in_string.as_bytes()));
        // Unbalanced closers never go below zero.
        assert!(!too_deep(b"]]]]{}"));
    }

    #[test]
    fn base64_must_be_strict_and_canonical() {
        for (text, bytes) in [
            (&b"QQ=="[..], &b"A"[..]),
            (b"QUI=", b"AB"),
            (b"QUJD", b"ABC"),
            (b"+/+/", b"\xfb\xff\xbf"),
            (b"QUJDRA==", b"ABCD"),
        ] {
            let body = [&b"{\"image\": \""[..], text, b"\"}"].concat();
            assert_eq!(parse_predict_body(&body).as_deref(), Ok(bytes), "{}", String::from_utf8_lossy(text));
        }
        for text in [
            &b"QR=="[..], // unused bits not zero
            b"QUJ=",      // 'J' = 0b001001: its low two bits are unused
            b"QQ",        // padding missing
            b"QQ=",
            b"Q",
            b"QUJDQ",
            b"QUJD=", // padding after a whole quad
            b"QUJD==",
            b"QUJD====",
            b"=QQ=",
            b"Q===",
            b"QQ==QQ==",
            b"QQ=a",
            b"Q Q==",
            b"QQ== ",
            b"QQ-_",
            b"QQ%3D",
        ] {
            let body = [&b"{\"image\": \""[..], text, b"\"}"].concat();
            assert_eq!(status_of(&body), 422, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn base64_accepts_exactly_the_canonical_encodings() {
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"ABQRab01+/===\n -_";
        let mut accepted = 0;
        for _ in 0..100_000 {
            let text: Vec<u8> = (0..1 + random.below(12)).map(|_| alphabet[random.below(alphabet.len())]).collect();
            let body = [&b"{\"image\": \""[..], &text, b"\", \"x\": 0}"].concat();
            // Canonical: the text is the encoding of the bytes it decodes to.
            if let Ok(data) = parse_predict_body(&body) {
                assert_eq!(encode(&data).as_bytes(), text, "{}", String::from_utf8_lossy(&text));
                accepted += 1;
            }
        }
        assert!(accepted > 1000, "{accepted}");
        for length in 1..40 {
            let data: Vec<u8> = (0..length).map(|_| random.below(256) as u8).collect();
            assert_eq!(parse_predict_body(format!("{{\"image\": \"{}\"}}", encode(&data)).as_bytes()), Ok(data));
        }
    }

    #[test]
    fn one_member_fast_path_gives_what_the_full_parse_gives() {
        let mut random = Random(7);
        let heads: &[&[u8]] =
            &[b"{\"image\": \"", b"{\"image\":\"", b" {\n\"image\" :\t\"", b"{\"image\": \"x\", \"image\": \"", b"{\""];
        let tails: &[&[u8]] = &[b"\"}", b"\" }\n", b"\"", b"\"}}", b"\"} x", b"\", \"a\": 1}"];
        let pieces: &[&[u8]] = &[
            b" ",
            b"\n",
            b"\t",
            b"{",
            b"}",
            b"\"",
            b":",
            b",",
            b"\\",
            b"\\u0041",
            b"image",
            b"=",
            b"==",
            b"QQ",
            b"QUJD",
            b"aGk=",
            b"-_",
            b"\xc3\xa9",
            b"\xef\xbb\xbf",
            b"null",
        ];
        let mut answered = 0;
        for _ in 0..30_000 {
            let bytes: Vec<u8> = (0..random.below(9)).map(|_| random.below(256) as u8).collect();
            let mut middle = encode(&bytes).into_bytes();
            for _ in 0..[0, 0, 1, 2][random.below(4)] {
                let at = random.below(middle.len() + 1);
                middle.splice(at..at, random.pick(pieces).iter().copied());
            }
            let body = [random.pick(heads), &middle, random.pick(tails)].concat();
            if let Some(fast) = one_member_image(&body) {
                assert_eq!(parsed_image(&body).ok(), Some(fast), "{}", String::from_utf8_lossy(&body));
                answered += 1;
            }
        }
        assert!(answered > 1500, "the fast path answered {answered} times");
    }

    #[test]
    fn the_benchmark_body_takes_the_fast_path() {
        let image: Vec<u8> = (0..10_240u32).map(|i| i as u8).collect();
        let body = format!("{{\"image\": \"{}\"}}", encode(&image));
        assert_eq!(one_member_image(body.as_bytes()), Some(image.clone()));
        assert_eq!(parse_predict_body(body.as_bytes()).ok(), Some(image));
    }

    #[test]
    fn lone_surrogates_are_found_only_in_escapes() {
        for (json, lone) in [
            (r#""\ud800""#, true),
            (r#""\uDBFF\u0041""#, true),
            (r#""\udc00\ud800""#, true),
            (r#""\ud800\ud800\udc00""#, true),
            (r#""\ud83d\ude00""#, false),
            (r#""\\ud800""#, false),
            (r#""\\\ud800""#, true),
            (r#""\"\ud83d\ude00\/""#, false),
            (r#"["\u00e9", "\u0000"]"#, false),
        ] {
            assert_eq!(has_lone_surrogate(json), lone, "{json}");
            // serde_json agrees where it reads the string.
            assert_eq!(serde_json::from_str::<serde_json::Value>(json).is_err(), lone, "{json}");
        }
    }

    #[test]
    fn content_type_must_be_json() {
        for ok in [&b"application/json"[..], b"application/json; charset=utf-8", b" Application/JSON ;x=y"] {
            assert_eq!(require_json(Some(ok)), Ok(()));
        }
        for (bad, shown) in [
            (Some(&b"text/plain"[..]), "text/plain"),
            (Some(b"application/jsonx"), "application/jsonx"),
            (Some(b""), "none"),
            (None, "none"),
            (Some(b"multipart/form-data; boundary=x"), "multipart/form-data"),
        ] {
            assert_eq!(
                require_json(bad),
                Err(ApiError::UnsupportedMediaType(format!("content type must be application/json, got {shown}")))
            );
        }
    }

    #[test]
    fn declared_lengths_over_the_limit_are_refused() {
        assert!(check_declared_length(Some(b"100"), 100).is_ok());
        assert!(check_declared_length(Some(b"101"), 100).is_err());
        assert!(check_declared_length(Some(b"999999999999999999999999999999999999999999"), 100).is_err());
        assert!(check_declared_length(Some(b"-1"), 100).is_ok());
        assert!(check_declared_length(None, 100).is_ok());
    }

    #[test]
    fn probabilities_is_a_boolean_the_last_one_counting() {
        for (query, expected) in [
            ("", false),
            ("other=1", false),
            ("probabilities=true", true),
            ("probabilities=YES", true),
            ("probabilities=On", true),
            ("probabilities=T", true),
            ("probabilities=y", true),
            ("probabilities=1", true),
            ("probabilities=0", false),
            ("probabilities=fAlSe", false),
            ("probabilities=N", false),
            ("probabilities=off", false),
            ("other=1&probabilities=on", true),
            ("probabilities=x&probabilities=1", true),
            ("probabilities=1&probabilities=no", false),
            ("%70robabilities=%74rue", true),
            ("Probabilities=zz", false),
        ] {
            assert_eq!(probabilities_flag(query), Ok(expected), "{query}");
        }
        for bad in [
            "probabilities=maybe",
            "probabilities=",
            "probabilities",
            "probabilities=+true",
            "probabilities=true%20",
            "probabilities=1&probabilities=2",
        ] {
            assert!(probabilities_flag(bad).is_err(), "{bad}");
        }
    }
}
