import base64
import binascii
import json
import random

import pybase64
import pytest

from serving_common.errors import ApiError
from serving_common.request import MAX_JSON_DEPTH, _b64decode, _one_member_image, _parsed_image, parse_predict_body

pytestmark = pytest.mark.unit


def _status(body: bytes) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        parse_predict_body(body)
    return caught.value.status, caught.value.detail


def test_valid_body_gives_the_file_bytes():
    data = b"\xff\xd8\xff\xe0 not checked here"
    assert parse_predict_body(b'{"image": "' + base64.b64encode(data) + b'"}') == data


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (b'"text"', 422, "JSON object"),
        (b"{}", 422, "missing"),
        (b'{"img": "aGk="}', 422, "missing"),
        (b'{"image": null}', 422, "got null"),
        (b'{"image": 5}', 422, "got number"),
        (b'{"image": ["aGk="]}', 422, "got array"),
        (b'{"image": ""}', 422, "empty"),
        (b'{"image": "!!!!"}', 422, "not valid base64"),
        (b'{"image": "aGk"}', 422, "not valid base64"),  # bad padding
        (b'{"image": "===="}', 422, "base64"),
    ],
)
def test_bad_bodies(body, status, words):
    got_status, detail = _status(body)
    assert got_status == status
    assert words in detail


def test_deeply_nested_json_is_refused_before_parsing():
    depth = MAX_JSON_DEPTH + 1
    status, detail = _status(b"[" * depth + b"]" * depth)
    assert status == 400
    assert "nested" in detail


def test_brackets_inside_strings_do_not_count_as_nesting():
    image = base64.b64encode(b"x").decode()
    body = ('{"note": "' + "[" * 100 + '", "image": "' + image + '"}').encode()
    assert parse_predict_body(body) == b"x"


def test_fast_base64_decides_as_cpython():
    """The SIMD decoder never accepts what CPython's validate=True refuses, nor decodes it otherwise; where it
    refuses, CPython decides (random strings over the alphabet's edges: pads, whitespace, URL-safe, non-ASCII)."""
    rng = random.Random(12)
    for _ in range(20000):
        text = "".join(rng.choice("ABCab01+/===\n -_é") for _ in range(rng.randint(1, 10)))
        try:
            expected: bytes | None = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            expected = None
        try:
            fast: bytes | None = pybase64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            fast = None
        assert fast is None or fast == expected, text
        if expected is None:
            with pytest.raises(ApiError):
                _b64decode(text)
        else:
            assert _b64decode(text) == expected


def test_one_member_fast_path_gives_what_the_full_parse_gives():
    """Bodies near the one-member shape (whitespace, other members, escapes, quotes, pads, a BOM, truncation): where
    the fast path answers, the full parse (json.loads + CPython's base64) answers the same bytes; where the full
    parse refuses, the fast path does not answer."""
    rng = random.Random(7)
    pieces = [b" ", b"\n", b"\t", b"\r", b"{", b"}", b'"', b":", b",", b"\\", b"\\u0041", b"image", b'"image"']
    pieces += [b"=", b"==", b"QQ", b"QUJD", b"aGk=", b"-_", b"\xc3\xa9", b"\xef\xbb\xbf", b"[", b"null"]
    answered = 0
    for _ in range(30000):
        head = rng.choice([b'{"image": "', b'{"image":"', b' {\n"image" :\t"', b'{"image": "x", "image": "', b'{"'])
        middle = base64.b64encode(rng.randbytes(rng.randint(0, 8)))
        for _ in range(rng.choice([0, 0, 1, 2])):  # mutations: an inserted piece
            at = rng.randint(0, len(middle))
            middle = middle[:at] + rng.choice(pieces) + middle[at:]
        tail = rng.choice([b'"}', b'" }\n', b'"', b'"}}', b'"} x', b'", "a": 1}'])
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
