//! Just enough of Python's `json.loads(bytes)` to answer what `parse_predict_body` asks — the type of the
//! document and, for an object, the last `"image"` member — accepting and refusing exactly what Python does:
//! UTF-8/16/32 detection as `json.detect_encoding` (lone surrogates pass), `NaN`/`Infinity`, numbers of any size,
//! strict strings (no control characters), duplicate keys (the last one wins).

use std::borrow::Cow;
use std::fmt;

/// The Python type a JSON value becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Object,
    Array,
    String,
    Int,
    Float,
    Bool,
    Null,
}

impl JsonType {
    /// `type(value).__name__`.
    pub fn python_name(self) -> &'static str {
        match self {
            JsonType::Object => "dict",
            JsonType::Array => "list",
            JsonType::String => "str",
            JsonType::Int => "int",
            JsonType::Float => "float",
            JsonType::Bool => "bool",
            JsonType::Null => "NoneType",
        }
    }

    /// The JSON name (serving_common.request._json_type).
    pub fn json_name(self) -> &'static str {
        match self {
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::String => "string",
            JsonType::Int | JsonType::Float => "number",
            JsonType::Bool => "boolean",
            JsonType::Null => "null",
        }
    }
}

/// A string value: its characters when they are all ASCII, else `None` (it cannot be base64 then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonString<'a> {
    pub ascii: Option<Cow<'a, [u8]>>,
}

impl JsonString<'_> {
    pub fn is_empty(&self) -> bool {
        matches!(&self.ascii, Some(text) if text.is_empty())
    }
}

/// The last `"image"` member of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member<'a> {
    String(JsonString<'a>),
    Other(JsonType),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    pub kind: JsonType,
    pub image: Option<Member<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JsonError {}

fn error<T>(message: impl Into<String>) -> Result<T, JsonError> {
    Err(JsonError { message: message.into() })
}

/// Parse a request body as Python's `json.loads(body)` would, keeping only what the API needs.
pub fn parse(body: &[u8]) -> Result<Document<'_>, JsonError> {
    let text = decode(body)?;
    // Borrowing from `body` is only possible when no transcoding happened.
    match text {
        Cow::Borrowed(text) => Parser::new(text).document(),
        Cow::Owned(text) => Parser::new(&text).document().map(Document::into_owned),
    }
}

impl Document<'_> {
    fn into_owned(self) -> Document<'static> {
        let image = self.image.map(|member| match member {
            Member::String(JsonString { ascii }) => {
                Member::String(JsonString { ascii: ascii.map(|text| Cow::Owned(text.into_owned())) })
            }
            Member::Other(kind) => Member::Other(kind),
        });
        Document { kind: self.kind, image }
    }
}

/// `json.detect_encoding` and `bytes.decode(encoding, "surrogatepass")`, to (WTF-)8 bytes.
fn decode(body: &[u8]) -> Result<Cow<'_, [u8]>, JsonError> {
    const UTF32_BOMS: [&[u8]; 2] = [b"\x00\x00\xFE\xFF", b"\xFF\xFE\x00\x00"];
    if UTF32_BOMS.iter().any(|bom| body.starts_with(bom)) {
        let big_endian = body.starts_with(UTF32_BOMS[0]);
        return utf32(&body[4..], big_endian).map(Cow::Owned);
    }
    if body.starts_with(b"\xFE\xFF") || body.starts_with(b"\xFF\xFE") {
        return utf16(&body[2..], body[0] == 0xFE).map(Cow::Owned);
    }
    if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest).map(Cow::Borrowed);
    }
    if body.len() >= 4 {
        if body[0] == 0 {
            return if body[1] != 0 { utf16(body, true) } else { utf32(body, true) }.map(Cow::Owned);
        }
        if body[1] == 0 {
            return if body[2] != 0 || body[3] != 0 { utf16(body, false) } else { utf32(body, false) }.map(Cow::Owned);
        }
    } else if body.len() == 2 {
        if body[0] == 0 {
            return utf16(body, true).map(Cow::Owned);
        }
        if body[1] == 0 {
            return utf16(body, false).map(Cow::Owned);
        }
    }
    utf8(body).map(Cow::Borrowed)
}

/// UTF-8 as Python's decoder checks it, with "surrogatepass" (encoded surrogates allowed).
fn utf8(bytes: &[u8]) -> Result<&[u8], JsonError> {
    if std::str::from_utf8(bytes).is_ok() {
        return Ok(bytes);
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (len, low, high) = match b {
            0x00..=0x7F => (1, 0x80, 0xBF),
            0xC2..=0xDF => (2, 0x80, 0xBF),
            0xE0 => (3, 0xA0, 0xBF),
            0xE1..=0xEF => (3, 0x80, 0xBF), // 0xED includes the surrogates: surrogatepass
            0xF0 => (4, 0x90, 0xBF),
            0xF1..=0xF3 => (4, 0x80, 0xBF),
            0xF4 => (4, 0x80, 0x8F),
            _ => {
                return error(format!("'utf-8' codec can't decode byte 0x{b:02x} in position {i}: invalid start byte"));
            }
        };
        for k in 1..len {
            let Some(&next) = bytes.get(i + k) else {
                return error(format!("'utf-8' codec can't decode bytes in position {i}: unexpected end of data"));
            };
            let (lo, hi) = if k == 1 { (low, high) } else { (0x80, 0xBF) };
            if !(lo..=hi).contains(&next) {
                return error(format!(
                    "'utf-8' codec can't decode byte 0x{b:02x} in position {i}: invalid continuation byte"
                ));
            }
        }
        i += len;
    }
    Ok(bytes)
}

fn push_code_point(out: &mut Vec<u8>, c: u32) {
    // WTF-8: like UTF-8, surrogates included.
    match c {
        0..=0x7F => out.push(c as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (c >> 6) as u8, 0x80 | (c & 0x3F) as u8]),
        0x800..=0xFFFF => {
            out.extend_from_slice(&[0xE0 | (c >> 12) as u8, 0x80 | ((c >> 6) & 0x3F) as u8, 0x80 | (c & 0x3F) as u8])
        }
        _ => out.extend_from_slice(&[
            0xF0 | (c >> 18) as u8,
            0x80 | ((c >> 12) & 0x3F) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]),
    }
}

fn utf16(bytes: &[u8], big_endian: bool) -> Result<Vec<u8>, JsonError> {
    if !bytes.len().is_multiple_of(2) {
        return error("'utf-16' codec can't decode the last byte: truncated data");
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| if big_endian { u16::from_be_bytes([p[0], p[1]]) } else { u16::from_le_bytes([p[0], p[1]]) })
        .collect();
    let mut out = Vec::with_capacity(units.len());
    let mut i = 0;
    while i < units.len() {
        let unit = u32::from(units[i]);
        if (0xD800..0xDC00).contains(&unit)
            && let Some(&next) = units.get(i + 1)
            && (0xDC00..0xE000).contains(&u32::from(next))
        {
            push_code_point(&mut out, 0x10000 + ((unit - 0xD800) << 10) + (u32::from(next) - 0xDC00));
            i += 2;
            continue;
        }
        push_code_point(&mut out, unit); // lone surrogates pass
        i += 1;
    }
    Ok(out)
}

fn utf32(bytes: &[u8], big_endian: bool) -> Result<Vec<u8>, JsonError> {
    if !bytes.len().is_multiple_of(4) {
        return error("'utf-32' codec can't decode bytes: truncated data");
    }
    let mut out = Vec::with_capacity(bytes.len() / 4);
    for p in bytes.chunks_exact(4) {
        let c = if big_endian {
            u32::from_be_bytes([p[0], p[1], p[2], p[3]])
        } else {
            u32::from_le_bytes([p[0], p[1], p[2], p[3]])
        };
        if c > 0x10FFFF {
            return error("'utf-32' codec can't decode bytes: code point not in range(0x110000)");
        }
        push_code_point(&mut out, c);
    }
    Ok(out)
}

/// A recursive-descent parser over validated (WTF-)8 text; callers bound the nesting beforehand, and the parser
/// refuses anything deeper than `MAX_DEPTH` regardless.
struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Parser<'a> {
    fn new(text: &'a [u8]) -> Self {
        Parser { text, at: 0, depth: 0 }
    }

    fn fail<T>(&self, what: &str) -> Result<T, JsonError> {
        error(format!("{what}: char {}", self.at))
    }

    fn skip_whitespace(&mut self) {
        while self.text.get(self.at).is_some_and(|&b| is_whitespace(b)) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn document(mut self) -> Result<Document<'a>, JsonError> {
        self.skip_whitespace();
        let document = match self.peek() {
            Some(b'{') => {
                let image = self.object(true)?;
                Document { kind: JsonType::Object, image }
            }
            _ => Document { kind: self.value()?, image: None },
        };
        self.skip_whitespace();
        if self.at != self.text.len() {
            return self.fail("Extra data");
        }
        Ok(document)
    }

    /// Any value; strings are checked and skipped.
    fn value(&mut self) -> Result<JsonType, JsonError> {
        match self.peek() {
            Some(b'"') => {
                self.string(false)?;
                Ok(JsonType::String)
            }
            Some(b'{') => {
                self.object(false)?;
                Ok(JsonType::Object)
            }
            Some(b'[') => {
                self.array()?;
                Ok(JsonType::Array)
            }
            Some(b'n') if self.literal(b"null") => Ok(JsonType::Null),
            Some(b't') if self.literal(b"true") => Ok(JsonType::Bool),
            Some(b'f') if self.literal(b"false") => Ok(JsonType::Bool),
            Some(b'N') if self.literal(b"NaN") => Ok(JsonType::Float),
            Some(b'I') if self.literal(b"Infinity") => Ok(JsonType::Float),
            Some(b'-') if self.text[self.at + 1..].starts_with(b"Infinity") => {
                self.at += 9;
                Ok(JsonType::Float)
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.fail("Expecting value"),
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// Python's NUMBER_RE: `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`.
    fn number(&mut self) -> Result<JsonType, JsonError> {
        let digits = |parser: &mut Self| {
            let start = parser.at;
            while parser.peek().is_some_and(|b| b.is_ascii_digit()) {
                parser.at += 1;
            }
            parser.at - start
        };
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => {
                self.at = start;
                return self.fail("Expecting value");
            }
        }
        let mut kind = JsonType::Int;
        if self.peek() == Some(b'.') && self.text.get(self.at + 1).is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
            digits(self);
            kind = JsonType::Float;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let mark = self.at;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                self.at = mark; // not part of the number: "Extra data" follows
            } else {
                kind = JsonType::Float;
            }
        }
        Ok(kind)
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail("JSON nested too deeply");
        }
        Ok(())
    }

    fn array(&mut self) -> Result<(), JsonError> {
        self.enter()?;
        self.at += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            self.value()?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.fail("Expecting ',' delimiter"),
            }
        }
    }

    /// An object; at the top level (`capture`), the value of its last `"image"` member is kept.
    fn object(&mut self, capture: bool) -> Result<Option<Member<'a>>, JsonError> {
        self.enter()?;
        self.at += 1;
        self.skip_whitespace();
        let mut image = None;
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(image);
        }
        loop {
            if self.peek() != Some(b'"') {
                return self.fail("Expecting property name enclosed in double quotes");
            }
            let key = self.string(true)?;
            let is_image = capture && key.ascii.as_deref() == Some(b"image".as_slice());
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return self.fail("Expecting ':' delimiter");
            }
            self.at += 1;
            self.skip_whitespace();
            if is_image && self.peek() == Some(b'"') {
                image = Some(Member::String(self.string(true)?));
            } else {
                let kind = self.value()?;
                if is_image {
                    image = Some(Member::Other(kind));
                }
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.skip_whitespace();
                }
                Some(b'}') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(image);
                }
                _ => return self.fail("Expecting ',' delimiter"),
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.text.get(at..at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    }

    /// A string (strict: no control characters); its ASCII content when `keep` and it is all ASCII.
    fn string(&mut self, keep: bool) -> Result<JsonString<'a>, JsonError> {
        self.at += 1;
        let start = self.at;
        // Fast path: no escapes.
        let mut ascii = true;
        loop {
            match self.peek() {
                None => return self.fail("Unterminated string starting at"),
                Some(b'"') => {
                    let content = &self.text[start..self.at];
                    self.at += 1;
                    let ascii = (keep && ascii).then_some(Cow::Borrowed(content));
                    return Ok(JsonString { ascii });
                }
                Some(b'\\') => break,
                Some(b) if b < 0x20 => return self.fail("Invalid control character at"),
                Some(b) => {
                    ascii &= b < 0x80;
                    self.at += 1;
                }
            }
        }
        // With escapes: build the text.
        let mut text = self.text[start..self.at].to_vec();
        loop {
            match self.peek() {
                None => return self.fail("Unterminated string starting at"),
                Some(b'"') => {
                    self.at += 1;
                    let ascii = (keep && ascii).then_some(Cow::Owned(text));
                    return Ok(JsonString { ascii });
                }
                Some(b'\\') => {
                    let escaped = self.text.get(self.at + 1).copied();
                    let simple = match escaped {
                        Some(b'"') => Some(b'"'),
                        Some(b'\\') => Some(b'\\'),
                        Some(b'/') => Some(b'/'),
                        Some(b'b') => Some(0x08),
                        Some(b'f') => Some(0x0C),
                        Some(b'n') => Some(b'\n'),
                        Some(b'r') => Some(b'\r'),
                        Some(b't') => Some(b'\t'),
                        Some(b'u') => None,
                        _ => return self.fail("Invalid \\escape"),
                    };
                    if let Some(byte) = simple {
                        text.push(byte);
                        self.at += 2;
                        continue;
                    }
                    let Some(unit) = self.hex4(self.at + 2) else {
                        return self.fail("Invalid \\uXXXX escape");
                    };
                    self.at += 6;
                    let mut code = unit;
                    if (0xD800..0xDC00).contains(&unit)
                        && self.text.get(self.at..self.at + 2) == Some(b"\\u")
                        && let Some(low) = self.hex4(self.at + 2)
                        && (0xDC00..0xE000).contains(&low)
                    {
                        code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        self.at += 6;
                    }
                    ascii &= code < 0x80;
                    push_code_point(&mut text, code);
                }
                Some(b) if b < 0x20 => return self.fail("Invalid control character at"),
                Some(b) => {
                    ascii &= b < 0x80;
                    text.push(b);
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(body: &str) -> Result<JsonType, JsonError> {
        parse(body.as_bytes()).map(|d| d.kind)
    }

    fn image(body: &[u8]) -> Option<Member<'_>> {
        parse(body).unwrap().image
    }

    fn ascii(text: &str) -> Member<'static> {
        Member::String(JsonString { ascii: Some(Cow::Owned(text.as_bytes().to_vec())) })
    }

    #[test]
    fn top_level_types_are_pythons() {
        for (body, expected) in [
            ("{}", JsonType::Object),
            (" [1, 2] ", JsonType::Array),
            ("\"x\"", JsonType::String),
            ("-12", JsonType::Int),
            ("123456789012345678901234567890", JsonType::Int),
            ("1.5", JsonType::Float),
            ("1e400", JsonType::Float),
            ("2E-3", JsonType::Float),
            ("NaN", JsonType::Float),
            ("-Infinity", JsonType::Float),
            ("true", JsonType::Bool),
            ("null", JsonType::Null),
        ] {
            assert_eq!(kind(body), Ok(expected), "{body}");
        }
    }

    #[test]
    fn what_python_refuses_is_refused() {
        for body in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{'a': 1}",
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "tru",
            "nan",
            "\"a\tb\"",
            "\"\\x41\"",
            "\"\\u12G4\"",
            "{\"a\" 1}",
            "[1 2]",
            "{} {}",
            "\"abc",
            "{\"a\":}",
            "infinity",
        ] {
            assert!(parse(body.as_bytes()).is_err(), "{body:?} should be refused");
        }
    }

    #[test]
    fn encodings_are_detected_as_python_does() {
        let utf16le: Vec<u8> = "{\"image\": \"QQ==\"}".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let utf16be: Vec<u8> = "[1]".encode_utf16().flat_map(u16::to_be_bytes).collect();
        let mut bom16 = vec![0xFF, 0xFE];
        bom16.extend_from_slice(&utf16le);
        let utf32le: Vec<u8> = "{\"image\": 1}".chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
        assert_eq!(image(&utf16le), Some(ascii("QQ==")));
        assert_eq!(parse(&utf16be).unwrap().kind, JsonType::Array);
        assert_eq!(image(&bom16), Some(ascii("QQ==")));
        assert_eq!(image(&utf32le), Some(Member::Other(JsonType::Int)));
        assert_eq!(image(b"\xEF\xBB\xBF{\"image\": \"QQ==\"}"), Some(ascii("QQ==")));
        // Invalid UTF-8 is refused; an encoded surrogate passes ("surrogatepass").
        assert!(parse(b"{\"image\": \"\xff\"}").is_err());
        assert!(parse(b"\"\xC0\x80\"").is_err());
        assert!(parse(b"{\"x\": \"\xED\xA0\x80\", \"image\": \"QQ==\"}").is_ok());
        assert!(parse(&[b'1', 0]).is_ok()); // "1\0" is UTF-16-LE "1"
    }

    #[test]
    fn the_last_image_member_wins() {
        assert_eq!(image(br#"{"image": 1, "image": "QQ=="}"#), Some(ascii("QQ==")));
        assert_eq!(image(br#"{"image": "QQ==", "image": null}"#), Some(Member::Other(JsonType::Null)));
        assert_eq!(image(br#"{"\u0069mage": "QQ=="}"#), Some(ascii("QQ==")));
        assert_eq!(image(br#"{"images": "QQ=="}"#), None);
        assert_eq!(image(br#"{"x": {"image": "QQ=="}}"#), None);
    }

    #[test]
    fn image_strings_keep_ascii_text_only() {
        assert_eq!(image(br#"{"image": "a\/b"}"#), Some(ascii("a/b")));
        assert_eq!(image(br#"{"image": "\u0041"}"#), Some(ascii("A")));
        let non_ascii = Some(Member::String(JsonString { ascii: None }));
        assert_eq!(image("{\"image\": \"é\"}".as_bytes()), non_ascii);
        assert_eq!(image(br#"{"image": "\u00e9"}"#), non_ascii);
        assert_eq!(image(br#"{"image": "\ud800"}"#), non_ascii);
        assert!(matches!(image(br#"{"image": ""}"#), Some(Member::String(s)) if s.is_empty()));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
        let fine = "[".repeat(30) + &"]".repeat(30);
        assert!(parse(fine.as_bytes()).is_ok());
    }
}
