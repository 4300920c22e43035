//! `POST /predict/` requests, checked in the order and with the status codes of the Python services
//! (serving_common.app and serving_common.request): query → content type → size → body → image.

use crate::error::ApiError;
use crate::json::{self, JsonType, Member};

/// Deeper JSON than this is refused before parsing; the body has one level.
pub const MAX_JSON_DEPTH: usize = 32;

/// `?probabilities=...` as FastAPI reads a `bool` query parameter: the last occurrence wins, and pydantic's
/// words for true and false (any case) are the only values accepted (422 otherwise).
pub fn probabilities_flag(query: &str) -> Result<bool, ApiError> {
    let Some(value) = parse_query(query).into_iter().rev().find(|(name, _)| name == "probabilities").map(|(_, v)| v)
    else {
        return Ok(false);
    };
    match value.to_lowercase().as_str() {
        "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
        "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
        _ => Err(ApiError::Unprocessable(format!(
            "query parameter 'probabilities' must be a boolean (true/false, 1/0, yes/no, on/off), got {value:?}"
        ))),
    }
}

/// `urllib.parse.parse_qsl(query, keep_blank_values=True)`.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (unquote_plus(name), unquote_plus(value))
        })
        .collect()
}

/// `urllib.parse.unquote_plus` (UTF-8, invalid sequences replaced).
fn unquote_plus(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex digits are ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("checked hex digits"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The media type must be `application/json` (parameters such as a charset are ignored; none is wrong).
pub fn require_json(content_type: Option<&[u8]>) -> Result<(), ApiError> {
    let raw = content_type.unwrap_or_default();
    let essence = raw.split(|&b| b == b';').next().unwrap_or_default();
    let media_type = String::from_utf8_lossy(essence).trim().to_lowercase();
    if media_type == "application/json" {
        return Ok(());
    }
    let shown = if media_type.is_empty() { "none".to_string() } else { media_type };
    Err(ApiError::UnsupportedMediaType(format!("content type must be application/json, got {shown}")))
}

/// A declared `Content-Length` over the limit is refused before reading (only plain digits count, as in Python).
pub fn check_declared_length(content_length: Option<&[u8]>, limit: usize) -> Result<(), ApiError> {
    let Some(declared) = content_length else {
        return Ok(());
    };
    if declared.is_empty() || !declared.iter().all(u8::is_ascii_digit) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(declared);
    let too_large = match text.parse::<u128>() {
        Ok(length) => length > limit as u128,
        Err(_) => true, // more digits than fit in 128 bits
    };
    if too_large {
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

/// JSON's whitespace (RFC 8259 §2).
fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
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
/// base64-simd accepts no text that `b64decode_strict` refuses (tested), and decodes it to the same bytes.
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

/// `parse_predict_body` through the JSON parser and the strict base64 decoder: any body.
fn parsed_image(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("request body is empty; send JSON {\"image\": \"<base64>\"}".into()));
    }
    if too_deep(body) {
        return Err(ApiError::BadRequest(format!("request body is nested deeper than {MAX_JSON_DEPTH} levels")));
    }
    let document =
        json::parse(body).map_err(|error| ApiError::BadRequest(format!("request body is not valid JSON: {error}")))?;
    if document.kind != JsonType::Object {
        return Err(ApiError::Unprocessable(format!(
            "request body must be a JSON object, got {}",
            document.kind.python_name()
        )));
    }
    let image = match document.image {
        None => return Err(ApiError::Unprocessable("field 'image' is missing".into())),
        Some(Member::Other(kind)) => {
            return Err(ApiError::Unprocessable(format!(
                "field 'image' must be a base64 string, got {}",
                kind.json_name()
            )));
        }
        Some(Member::String(text)) => text,
    };
    if image.is_empty() {
        return Err(ApiError::Unprocessable("field 'image' is empty".into()));
    }
    let Some(ascii) = image.ascii else {
        return Err(ApiError::Unprocessable(
            "field 'image' is not valid base64: string argument should contain only ASCII characters".into(),
        ));
    };
    let data = b64decode_strict(&ascii)
        .map_err(|reason| ApiError::Unprocessable(format!("field 'image' is not valid base64: {reason}")))?;
    if data.is_empty() {
        return Err(ApiError::Unprocessable("field 'image' decodes to no bytes".into()));
    }
    Ok(data)
}

/// The standard base64 alphabet (RFC 4648 §4).
const B64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `base64.b64decode(s, validate=True)`: CPython 3.11's `binascii.a2b_base64(s, strict_mode=True)`, step for
/// step (standard alphabet, no whitespace, padding required and only at the end; unused trailing bits and pads
/// after a complete quad are ignored, as in the Python 3.11 of the Python services' images).
pub fn b64decode_strict(text: &[u8]) -> Result<Vec<u8>, String> {
    const INVALID: u8 = 0xFF;
    const TABLE: [u8; 256] = {
        let mut table = [INVALID; 256];
        let mut i = 0;
        while i < 64 {
            table[B64_ALPHABET[i] as usize] = i as u8;
            i += 1;
        }
        table
    };
    if text.first() == Some(&b'=') {
        return Err("Leading padding not allowed".into());
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    // Whole quads of alphabet characters first (all but the last quad, which may hold padding): the same bytes the
    // step-by-step loop below gives them, without its state. It stops at the first quad with anything else.
    let mut done = 0;
    for quad in text[..text.len().saturating_sub(4)].chunks_exact(4) {
        let [a, b, c, d] = [0, 1, 2, 3].map(|k| TABLE[usize::from(quad[k])]);
        if [a, b, c, d].contains(&INVALID) {
            break;
        }
        out.extend_from_slice(&[(a << 2) | (b >> 4), (b << 4) | (c >> 2), (c << 6) | d]);
        done += 4;
    }
    let (mut quad_pos, mut left, mut pads, mut padding_started) = (0u8, 0u8, 0u8, false);
    for (i, &c) in text.iter().enumerate().skip(done) {
        if c == b'=' {
            padding_started = true;
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    if i + 1 < text.len() {
                        return Err("Excess data after padding".into());
                    }
                    return Ok(out);
                }
            }
            continue;
        }
        let value = TABLE[usize::from(c)];
        if value == INVALID {
            return Err("Only base64 data is allowed".into());
        }
        if padding_started {
            return Err("Discontinuous padding not allowed".into());
        }
        pads = 0;
        match quad_pos {
            0 => {
                quad_pos = 1;
                left = value;
            }
            1 => {
                quad_pos = 2;
                out.push((left << 2) | (value >> 4));
                left = value & 0x0F;
            }
            2 => {
                quad_pos = 3;
                out.push((left << 4) | (value >> 2));
                left = value & 0x03;
            }
            _ => {
                quad_pos = 0;
                out.push((left << 6) | value);
                left = 0;
            }
        }
    }
    match quad_pos {
        0 => Ok(out),
        1 => Err(format!(
            "Invalid base64-encoded string: number of data characters ({}) cannot be 1 more than a multiple of 4",
            out.len() / 3 * 4 + 1
        )),
        _ => Err("Incorrect padding".into()),
    }
}

/// `base64.b64encode`: the standard alphabet, padded (what clients send; the in-process bench builds its body
/// with it).
pub fn b64encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |bits, (i, &byte)| bits | (u32::from(byte) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64_ALPHABET[((bits >> (18 - 6 * i)) & 0x3F) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn simd_base64_accepts_nothing_the_strict_decoder_refuses() {
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"ABCab01+/===\n -_\xc3";
        for _ in 0..200_000 {
            let text: Vec<u8> = (0..random.below(13)).map(|_| alphabet[random.below(alphabet.len())]).collect();
            if let Ok(fast) = base64_simd::STANDARD.decode_to_vec(&text) {
                assert_eq!(b64decode_strict(&text), Ok(fast), "{}", String::from_utf8_lossy(&text));
            }
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
            let mut middle = b64encode(&bytes).into_bytes();
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
        let body = format!("{{\"image\": \"{}\"}}", b64encode(&image));
        assert_eq!(one_member_image(body.as_bytes()), Some(image.clone()));
        assert_eq!(parse_predict_body(body.as_bytes()).ok(), Some(image));
    }

    fn status(result: Result<Vec<u8>, ApiError>) -> u16 {
        use actix_web::ResponseError;
        match result {
            Ok(_) => 200,
            Err(error) => error.status_code().as_u16(),
        }
    }

    #[test]
    fn body_errors_have_pythons_status_codes() {
        let cases: &[(&[u8], u16)] = &[
            (b"", 400),
            (b"{\"image\": ", 400),
            (b"not json", 400),
            (b"{\"image\": \"QQ==\"}\xff", 400),
            (b"\xff\xfe\xfd", 400),
            (b"[]", 422),
            (b"\"QQ==\"", 422),
            (b"42", 422),
            (b"null", 422),
            (b"{}", 422),
            (b"{\"img\": \"QQ==\"}", 422),
            (b"{\"image\": null}", 422),
            (b"{\"image\": 12}", 422),
            (b"{\"image\": NaN}", 422),
            (b"{\"image\": [\"QQ==\"]}", 422),
            (b"{\"image\": {}}", 422),
            (b"{\"image\": true}", 422),
            (b"{\"image\": \"\"}", 422),
            (b"{\"image\": \"QQ\"}", 422),
            (b"{\"image\": \"Q Q==\"}", 422),
            (b"{\"image\": \"QQ==\\n\"}", 422),
            (b"{\"image\": \"QQ-_\"}", 422),
            (b"{\"image\": \"\xc3\xa9\"}", 422),
            (b"{\"image\": \"QQ==\"}", 200),
            (b" {\"image\": \"QUJD\", \"other\": [1, {\"a\": null}]} ", 200),
        ];
        for &(body, expected) in cases {
            assert_eq!(status(parse_predict_body(body)), expected, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let detail = |body: &[u8]| parse_predict_body(body).unwrap_err().detail();
        assert_eq!(detail(b"[1]"), "request body must be a JSON object, got list");
        assert_eq!(detail(b"{\"image\": null}"), "field 'image' must be a base64 string, got null");
        assert_eq!(detail(b"{\"image\": 1.5}"), "field 'image' must be a base64 string, got number");
        assert_eq!(detail(b"{}"), "field 'image' is missing");
        assert_eq!(detail(b"{\"image\": \"\"}"), "field 'image' is empty");
        assert_eq!(detail(b"{\"image\": \"QQ\"}"), "field 'image' is not valid base64: Incorrect padding");
    }

    #[test]
    fn nesting_beyond_32_levels_is_refused_before_parsing() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
        assert!(!too_deep(&nested(32)));
        assert!(too_deep(&nested(33)));
        // Brackets inside strings do not count, escaped quotes do not end strings.
        let in_string = format!("{{\"image\": \"{}\\\"{}\"}}", "[".repeat(40), "{".repeat(40));
        assert!(!too_deep(in_string.as_bytes()));
        let deep_object = "{\"a\":".repeat(33) + "1" + &"}".repeat(33);
        assert_eq!(status(parse_predict_body(deep_object.as_bytes())), 400);
        // Unbalanced closers never go below zero.
        assert!(!too_deep(b"]]]]{}"));
    }

    #[test]
    fn base64_is_as_strict_as_python() {
        // Accepted, with Python's results.
        for (text, bytes) in [
            (&b"QQ=="[..], &b"A"[..]),
            (b"QUI=", b"AB"),
            (b"QUJD", b"ABC"),
            (b"QR==", b"A"), // unused bits are ignored
            (b"", b""),
            (b"+/+/", b"\xfb\xff\xbf"),
            (b"QUJD=", b"ABC"), // Python 3.11: pads after a complete quad are ignored
            (b"QUJD==", b"ABC"),
        ] {
            assert_eq!(b64decode_strict(text).as_deref(), Ok(bytes), "{}", String::from_utf8_lossy(text));
        }
        // Refused, with CPython's reasons.
        for (text, reason) in [
            (&b"QQ"[..], "Incorrect padding"),
            (b"QQ=", "Incorrect padding"),
            (
                b"Q",
                "Invalid base64-encoded string: number of data characters (1) cannot be 1 more than a multiple of 4",
            ),
            (
                b"QUJDQ",
                "Invalid base64-encoded string: number of data characters (5) cannot be 1 more than a multiple of 4",
            ),
            (b"=QQ=", "Leading padding not allowed"),
            (b"QUJD=a", "Discontinuous padding not allowed"),
            (b"QQ==QQ==", "Excess data after padding"),
            (b"QQ=a", "Discontinuous padding not allowed"),
            (b"QQ== ", "Excess data after padding"),
            (b"Q Q==", "Only base64 data is allowed"),
            (b"QQ==\n", "Excess data after padding"),
            (b"QUJD\n", "Only base64 data is allowed"),
            (b"QQ-_", "Only base64 data is allowed"),
        ] {
            assert_eq!(b64decode_strict(text), Err(reason.to_string()), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn base64_encoding_is_pythons_and_round_trips() {
        for (bytes, text) in
            [(&b""[..], ""), (b"A", "QQ=="), (b"AB", "QUI="), (b"ABC", "QUJD"), (b"\xfb\xff\xbf", "+/+/")]
        {
            assert_eq!(b64encode(bytes), text);
        }
        let all: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for len in 0..all.len() {
            assert_eq!(b64decode_strict(b64encode(&all[..len]).as_bytes()).as_deref(), Ok(&all[..len]));
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
    fn probabilities_is_a_fastapi_bool() {
        assert_eq!(probabilities_flag(""), Ok(false));
        assert_eq!(probabilities_flag("probabilities=true"), Ok(true));
        assert_eq!(probabilities_flag("probabilities=YES"), Ok(true));
        assert_eq!(probabilities_flag("probabilities=0"), Ok(false));
        assert_eq!(probabilities_flag("other=1&probabilities=on"), Ok(true));
        assert_eq!(probabilities_flag("probabilities=x&probabilities=1"), Ok(true));
        assert_eq!(probabilities_flag("%70robabilities=%74rue"), Ok(true));
        assert_eq!(probabilities_flag("Probabilities=zz"), Ok(false));
        for bad in
            ["probabilities=maybe", "probabilities=", "probabilities", "probabilities=+true", "probabilities=true%20"]
        {
            assert!(probabilities_flag(bad).is_err(), "{bad}");
        }
    }
}
