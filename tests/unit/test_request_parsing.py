"""The body rules of ``docs/contract.md`` §2, as :mod:`serving_common.request` keeps them."""

import base64
import json
import random
import re
from typing import Any

import pytest

from serving_common.errors import ApiError
from serving_common.request import (
    MAX_JSON_DEPTH,
    _has_lone_surrogate,
    _one_member_image,
    _parsed_image,
    _too_deep,
    decode_base64,
    parse_predict_body,
)

pytestmark = pytest.mark.unit

B64_PNG_ISH = base64.b64encode(b"\x89PNG not checked here").decode()


def _status(body: bytes) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        parse_predict_body(body)
    return caught.value.status, caught.value.detail


def _with_image(**others: str) -> bytes:
    """``{<name>: <raw JSON text>, ..., "image": <a valid image string>}``, members in that order."""
    members = [f'"{name}": {text}' for name, text in others.items()] + [f'"image": "{B64_PNG_ISH}"']
    return ("{" + ", ".join(members) + "}").encode()


def test_valid_body_gives_the_file_bytes():
    data = b"\xff\xd8\xff\xe0 not checked here"
    assert parse_predict_body(b'{"image": "' + base64.b64encode(data) + b'"}') == data


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        # 1. UTF-8, no byte order mark
        (b"", 400, "empty"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (b'{"image": "\xed\xa0\x80"}', 400, "not UTF-8"),  # a surrogate encoded in UTF-8
        (b"\xef\xbb\xbf" + _with_image(), 400, "byte order mark"),
        ('{"image": "aGk="}'.encode("utf-16"), 400, "not UTF-8"),
        ('{"image": "aGk="}'.encode("utf-16-le"), 400, "not valid JSON"),  # valid UTF-8, with NULs between
        ('{"image": "aGk="}'.encode("utf-16-be"), 400, "not valid JSON"),
        ('{"image": "aGk="}'.encode("utf-32"), 400, "not UTF-8"),
        ('{"image": "aGk="}'.encode("utf-32-le"), 400, "not valid JSON"),
        # 2. JSON per RFC 8259
        (b"{not json", 400, "not valid JSON"),
        (_with_image() + b" x", 400, "not valid JSON"),
        (b'{"image": NaN}', 400, "NaN"),
        (_with_image(x="Infinity"), 400, "Infinity"),
        (_with_image(x="[-Infinity]"), 400, "-Infinity"),
        (b'{"image": "\\ud800"}', 400, "lone surrogate"),
        (_with_image(note='"a \\udfff b"'), 400, "lone surrogate"),
        (_with_image(note='"\\ud83d\\u0041"'), 400, "lone surrogate"),  # a high surrogate, then no low one
        (_with_image(note='"\\ude00\\ud83d"'), 400, "lone surrogate"),  # a pair in the wrong order
        (b'{"\\uDC00": 1, "image": "aGk="}', 400, "lone surrogate"),  # in a name
        (_with_image(note='"\\ud800"', **{"no\\u0074e": "1"}), 400, "lone surrogate"),  # in a replaced duplicate
        (b"[01]", 400, "not valid JSON"),
        (b'{"image": "aGk=",}', 400, "not valid JSON"),
        (b"{'image': 'aGk='}", 400, "not valid JSON"),
        (b'{"image": "a\tb"}', 400, "not valid JSON"),  # a raw control character in a string
        # 4. shape
        (b"[1, 2]", 422, "JSON object, got array"),
        (b'"text"', 422, "JSON object, got string"),
        (b"{}", 422, "missing"),
        (b'{"img": "aGk="}', 422, "missing"),
        (b'{"image": null}', 422, "got null"),
        (b'{"image": 5}', 422, "got number"),
        (b'{"image": 1e999}', 422, "got number"),
        (b'{"image": -' + b"9" * 5000 + b"}", 422, "got number"),  # past Python's 4300-digit int() limit
        (b'{"image": 0.' + b"1" * 5000 + b"e-99999}", 422, "got number"),
        (b'{"image": true}', 422, "got boolean"),
        (b'{"image": ["aGk="]}', 422, "got array"),
        (b'{"image": {"data": "aGk="}}', 422, "got object"),
        (b'{"image": "aGk=", "image": 7}', 422, "got number"),  # the last one counts
        # 5. image: non-empty strict canonical base64
        (b'{"image": ""}', 422, "empty"),
        (b'{"image": "!!!!"}', 422, "'!' at 0 is not in the standard alphabet"),
        (b'{"image": "aGk"}', 422, "length 3 is not a multiple of 4"),
        (b'{"image": "QUJD="}', 422, "length 5"),  # a pad after a whole group (CPython takes it)
        (b'{"image": "QUJD===="}', 422, "'=' is only allowed as the last"),
        (b'{"image": "===="}', 422, "'=' is only allowed as the last"),
        (b'{"image": "QQ==QUJD"}', 422, "'=' is only allowed as the last"),
        (b'{"image": "QQ=A"}', 422, "'=' is only allowed as the last"),
        (b'{"image": "QR=="}', 422, "unused bits"),  # QQ== written with a nonzero unused bit
        (b'{"image": "QUJ="}', 422, "unused bits"),  # QUI=
        (b'{"image": "aGk=\\n"}', 422, "'\\n' at 4"),
        (b'{"image": "aG k="}', 422, "' ' at 2"),
        (b'{"image": "-_-_"}', 422, "'-' at 0"),
        (b'{"image": "QUJD\\u00e9"}', 422, "'é' at 4"),
    ],
)
def test_bad_bodies(body, status, words):
    got_status, detail = _status(body)
    assert (got_status, words in detail) == (status, True), detail


@pytest.mark.parametrize(
    "body",
    [
        _with_image(),
        _with_image(note='"\\ud83d\\ude00 \\uD83D\\uDE00"'),  # surrogate pairs are characters
        _with_image(note='"\\\\ud800"'),  # an escaped backslash, then text: not an escape
        _with_image(note='"\\\\\\u0041"'),
        _with_image(big="-" + "9" * 5000, small="1e-999", huge="1e999", exact="0.1e+1"),
        _with_image(note='"' + "[{" * 100 + '"'),  # brackets in strings are text
        _with_image(deep="[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)),  # 32 deep with the body
        _with_image(other='{"a": [{"b": [1, 2, {"c": null}]}]}', t="true", f="false", n="null"),
        b' \t\r\n{ "image" :\n"' + B64_PNG_ISH.encode() + b'" , "x" : [ ] }\n',
        b'{"image": 5, "image": "' + B64_PNG_ISH.encode() + b'"}',  # the last one counts
        b'{"image": "\\u0051Q=="}',  # escapes in the string are JSON's, before base64 sees it
    ],
)
def test_valid_bodies(body):
    parse_predict_body(body)


def test_a_valid_base64_of_each_length_is_accepted():
    for size in range(1, 40):
        data = bytes(range(size))
        assert parse_predict_body(b'{"image": "' + base64.b64encode(data) + b'"}') == data


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, MAX_JSON_DEPTH + 5, 5000, 100_000])
def test_nesting_deeper_than_the_limit_is_400(depth):
    status, detail = _status(b"[" * depth + b"]" * depth)
    assert (status, detail) == (400, "request body is nested deeper than 32 levels")


def test_nesting_is_counted_where_the_image_is_valid_and_in_replaced_members():
    too_deep = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH  # 33 with the body's object
    assert _status(_with_image(x=too_deep))[0] == 400
    assert _status(_with_image(x=too_deep, **{"\\u0078": "1"}))[0] == 400  # replaced by a later "x"
    objects = lambda depth: ('{"a": ' * depth + "1" + "}" * depth).encode()  # noqa: E731
    assert _status(objects(MAX_JSON_DEPTH + 1))[0] == 400
    assert _status(objects(MAX_JSON_DEPTH))[0] == 422  # 32 deep is JSON enough; it has no image


# --- the checks against references written from the contract's words ----------------------------------------------

#: RFC 4648 §4 with §3.5's canonical last group: groups of four; a last group of 2 + "==" whose second character
#: has its low 4 bits zero, or of 3 + "=" whose third has its low 2 bits zero.
_CANONICAL_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?")


def _reference_base64(text: str) -> bytes | None:
    return base64.b64decode(text) if _CANONICAL_BASE64.fullmatch(text) else None


def test_base64_is_decoded_as_the_contract_says():
    """Random strings over the alphabet's edges (pads, canonical and not, whitespace, URL-safe, non-ASCII), and
    valid encodings with one character changed: decoded exactly when strict canonical base64 says so."""
    rng = random.Random(12)
    accepted = 0
    for _ in range(30000):
        if rng.random() < 0.5:
            text = "".join(rng.choice("AQgwBRhx09+/===\n -_é") for _ in range(rng.randint(0, 12)))
        else:
            chars = list(base64.b64encode(rng.randbytes(rng.randint(1, 9))).decode())
            chars[rng.randrange(len(chars))] = rng.choice("ABCDEFQRSTgwxyz0189+/=")
            text = "".join(chars)
        expected = _reference_base64(text)
        assert decode_base64(text) == expected, text
        assert decode_base64(text.encode()) == expected, text
        accepted += bool(expected)
    assert accepted > 5000  # both answers were exercised


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [text for key, member in value.items() for text in [key, *_strings(member)]]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def _depth(value: Any) -> int:
    if isinstance(value, dict | list):
        return 1 + max((_depth(child) for child in (value.values() if isinstance(value, dict) else value)), default=0)
    return 0


def test_lone_surrogates_are_found_as_json_loads_makes_them():
    """For JSON texts of escape pieces (pairs, halves, escaped backslashes, other escapes), in names and values:
    the text check finds a lone surrogate exactly when ``json.loads`` makes a string holding one."""
    rng = random.Random(3)
    pieces = ["\\ud83d", "\\ude00", "\\uD800", "\\uDFFF", "\\ud83d\\ude00", "\\uDBFF\\uDFFF"]
    pieces += ["\\\\", "\\\\u", "\\u0041", "\\uD7FF", "\\uE000", "\\n", '\\"', "a", "u", "d800", "\\\\ud800"]
    found = 0
    for index in range(20000):
        text_of = lambda: "".join(rng.choice(pieces) for _ in range(rng.randint(0, 2)))  # noqa: E731
        text = f'{{"{text_of()}{index}": ["{text_of()}", {{"k": "{text_of()}"}}], "image": "{text_of()}"}}'
        document = json.loads(text)
        expected = any(re.search("[\ud800-\udfff]", string) for string in _strings(document))
        assert _has_lone_surrogate(text) == expected, text
        found += expected
    assert 4000 < found < 16000


def test_nesting_is_measured_as_the_document_nests():
    """For random documents 25–40 deep (arrays and objects, strings holding brackets, quotes and backslashes),
    the text check says too deep exactly when the parsed document is."""
    rng = random.Random(5)
    strings = ["[", "]", "{", "}", '"', "\\", "[\\", "x"]

    def value(depth: int) -> Any:
        if depth == 0:
            return rng.choice([1, "s", None, rng.choice(strings) * rng.randint(1, 40)])
        children = [value(depth - 1)] + [value(rng.randint(0, min(2, depth - 1))) for _ in range(rng.randint(0, 2))]
        rng.shuffle(children)
        return children if rng.random() < 0.5 else {f"k{i}{rng.choice(strings)}": c for i, c in enumerate(children)}

    verdicts = set()
    for _ in range(400):
        document = value(rng.randint(25, 40))
        text = json.dumps(document)
        assert _too_deep(text) == (_depth(document) > MAX_JSON_DEPTH), text
        verdicts.add(_too_deep(text))
    assert verdicts == {True, False}


# --- the one-member fast path -------------------------------------------------------------------------------------


def test_one_member_fast_path_gives_what_the_full_parse_gives():
    """Bodies near the one-member shape (whitespace, other members, escapes, NaN, quotes, pads, non-canonical last
    groups, a BOM, non-ASCII, truncation): where the fast path answers, the full parse answers the same bytes;
    where the full parse refuses, the fast path does not answer."""
    rng = random.Random(7)
    pieces = [b" ", b"\n", b"\t", b"\r", b"{", b"}", b'"', b":", b",", b"\\", b"\\u0041", b"\\ud800", b"image"]
    pieces += [b'"image"', b"=", b"==", b"QQ", b"QR", b"QUJD", b"QUJ", b"aGk=", b"-_", b"\xc3\xa9", b"\xef\xbb\xbf"]
    pieces += [b"[", b"null", b"NaN", b"\x00", b"\xff"]
    answered = 0
    for _ in range(30000):
        head = rng.choice(
            [
                b'{"image": "',
                b'{"image":"',
                b' {\n"image" :\t"',
                b'{"image": "x", "image": "',
                b'{"',
                b'\xef\xbb\xbf{"image": "',
            ]
        )
        middle = base64.b64encode(rng.randbytes(rng.randint(0, 8)))
        for _ in range(rng.choice([0, 0, 1, 2])):  # mutations: an inserted piece
            at = rng.randint(0, len(middle))
            middle = middle[:at] + rng.choice(pieces) + middle[at:]
        tail = rng.choice([b'"}', b'" }\n', b'"', b'"}}', b'"} x', b'", "a": 1}', b'", "a": NaN}'])
        body = head + middle + tail
        try:
            expected: bytes | None = _parsed_image(body)
        except ApiError:
            expected = None
        fast = _one_member_image(body)
        assert fast is None or fast == expected, body
        answered += fast is not None
    assert answered > 1500  # the fast path was exercised, not only refused


def test_the_benchmark_body_takes_the_fast_path():
    image = bytes(range(256)) * 40
    body = json.dumps({"image": base64.b64encode(image).decode()}).encode()
    assert _one_member_image(body) == image == parse_predict_body(body)


def test_the_fast_path_refuses_a_non_canonical_last_group():
    assert _one_member_image(b'{"image": "QR=="}') is None
    assert _one_member_image(b'{"image": "QUJD="}') is None
    assert _one_member_image(b'{"image": "QQ=="}') == b"A"
