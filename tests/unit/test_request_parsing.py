import base64
import binascii
import random

import pybase64
import pytest

from serving_common.errors import ApiError
from serving_common.request import MAX_JSON_DEPTH, _b64decode, parse_predict_body

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
