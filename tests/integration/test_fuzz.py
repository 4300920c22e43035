"""Property-based requests (hypothesis) against the three running services (``docs/contract.md``).

Every generated request goes to all three services, and every answer is within the error contract: never a 5xx,
a refusal is JSON ``{"detail": <str>}``, a success ``{"prediction": <str>}``. Beyond that, each test claims what
the contract says of its requests:

- random bytes, random JSON (cut, changed, nested around the depth limit, with ``NaN``, lone surrogates, a byte
  order mark), random ``image`` values in objects with other members, random content types and queries: the
  contract decides each of them (§1, §2, and §3 for the valid or signature-only images among the values), so
  the three services give the same status;
- mutated image files (valid JPEGs and PNGs with bytes flipped, set, inserted, deleted or cut off, mostly in the
  headers, where decoders differ): a decoder may accept damage another refuses (the contract's "where the
  services may differ"), so each service answers 200 or 422, and where all three answer 200 their probabilities
  agree as on the corpus (DESIGN §3, ``model_serving.agreement``).

``FUZZ_EXAMPLES`` sets the examples per test (default 25: the five tests take under a minute once the services
run); for a long run, e.g. ``FUZZ_EXAMPLES=1000 .venv/bin/pytest tests/integration/test_fuzz.py``. Each example is sent
to every service; there is no deadline (torch-serving takes tens of milliseconds per prediction) and no example
database (every run draws afresh; a failure prints the blob that reproduces it).
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from model_serving.agreement import disagreements
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CLIENT_TIMEOUT_S = 30.0

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def _image(fmt: str, size: tuple[int, int], **options: object) -> bytes:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format=fmt, **options)
    return out.getvalue()


#: Small valid files to mutate: a decoder's edge cases are near valid input, not in random bytes.
SEEDS = [
    _image("JPEG", (24, 16), quality=80),
    _image("JPEG", (17, 9), quality=95, progressive=True),
    _image("JPEG", (16, 16), quality=70, subsampling=0),
    _image("PNG", (12, 10)),
    _image("PNG", (9, 7), optimize=True),
]
SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\x00\x00\x00\x00WEBP", b"II*\x00"]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/json ;x=y",
    "application/jsonx",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
]
PROBABILITIES = ["true", "false", "1", "0", "yes", "off", "TRUE", "maybe", "", "2", "tru e"]


#: Mutations land in the first bytes this often: the headers (JPEG's segments before the scan, PNG's IHDR and
#: first chunks), where one decoder's checks differ from another's; scan and pixel data is more of the same.
HEADER_BYTES = 160


@st.composite
def mutated_image(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "flip", "set", "set", "insert", "delete", "truncate"]))
        end = len(data) - 1 if draw(st.booleans()) else min(len(data) - 1, HEADER_BYTES)
        at = draw(st.integers(0, max(0, end)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.integers(-(10**30), 10**30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
#: Values whose answer the contract decides (mutated images are :func:`test_mutated_images`'s).
image_values = st.one_of(
    json_values,
    st.binary(max_size=600).map(_b64),
    st.builds(lambda sig, rest: _b64(sig + rest), st.sampled_from(SIGNATURES), st.binary(max_size=300)),
    st.sampled_from(SEEDS).map(_b64),
    st.sampled_from(SEEDS).map(lambda data: _b64(data) + "="),  # a pad after the last group
    st.sampled_from(SEEDS).map(lambda data: _b64(data).replace("=", "")),  # pads left out
    st.from_regex(r"[A-Za-z0-9+/=]{0,40}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9+/\-_= \n]{0,40}", fullmatch=True),
)


@st.composite
def predict_objects(draw: st.DrawFn) -> bytes:
    """A JSON object with a (random) ``image``, extra members, random escaping, sometimes another encoding."""
    document = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3))
    if draw(st.booleans()) or not document:
        document["image"] = draw(image_values)
    text = json.dumps(document, ensure_ascii=draw(st.booleans()), allow_nan=True)
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "utf-16-le", "utf-16-be", "utf-16", "utf-32"]))
    return text.encode(encoding, errors="surrogatepass")


#: Values RFC 8259 refuses though Python's json reads them (NaN, Infinity, lone surrogates), and ones it allows.
RFC_8259_EDGES = ["NaN", "Infinity", "-Infinity", '"\\ud800"', '"a\\udfffb"', '"\\ud83d\\ude00"', "1e999", "-0.0e-0"]


@st.composite
def json_ish(draw: st.DrawFn) -> bytes:
    """JSON text, sometimes broken: cut short, a character changed, a value that RFC 8259 refuses (or a valid edge)
    put beside it, a byte order mark, put in an array, nested around the depth limit."""
    text = json.dumps(draw(json_values), allow_nan=True)
    edit = draw(st.sampled_from(["none", "cut", "change", "wrap", "beside", "bom", "nest"]))
    if edit == "cut" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif edit == "change" and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(list('{}[]",:\\ 0ae-'))) + text[at + 1 :]
    elif edit == "wrap":
        text = '{"image": ' + text + "}"
    elif edit == "beside":
        text = '{"image": ' + text + ', "x": ' + draw(st.sampled_from(RFC_8259_EDGES)) + "}"
    elif edit == "bom":
        text = "\ufeff" + text
    elif edit == "nest":
        depth = draw(st.integers(28, 34))  # around the limit: 32 is the body's object, 31 arrays and a scalar
        text = '{"image": ' + "[" * depth + text + "]" * depth + "}"
    return text.encode("utf-8", errors="surrogatepass")


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


def _answers(
    services: dict, client: httpx.Client, body: bytes, content_type: str | None, query: str | None
) -> dict[str, httpx.Response]:
    """Each service's answer to one request, every one checked against the error contract (no 5xx, JSON)."""
    headers = {} if content_type is None else {"content-type": content_type}
    params = {} if query is None else {"probabilities": query}
    answers = {}
    for name in SERVICE_NAMES:
        try:
            response = client.post(
                services[name].base_url + "/predict/",
                content=body,
                headers=headers,
                params=params,
                timeout=CLIENT_TIMEOUT_S,
            )
        except httpx.TransportError as error:
            pytest.fail(f"{name}: {error!r} for {body[:200]!r}; its logs:\n{services[name].logs()[-3000:]}")
        assert response.status_code < 500, (
            f"{name} gave {response.status_code}: {response.text[:300]} for {body[:200]!r}"
        )
        document = response.json()
        key = "prediction" if response.status_code == 200 else "detail"
        assert isinstance(document, dict), f"{name}: {document}"
        assert isinstance(document.get(key), str), f"{name}: {document}"
        answers[name] = response
    return answers


def _same_status(
    services: dict, client: httpx.Client, body: bytes, content_type: str | None, query: str | None
) -> None:
    """A request the contract decides: the same status from every service."""
    answers = _answers(services, client, body, content_type, query)
    statuses = {response.status_code for response in answers.values()}
    event(f"status {'/'.join(str(status) for status in sorted(statuses))}")
    assert len(statuses) == 1, f"the services disagree on {body[:200]!r} ({content_type!r}, {query!r}): " + str(
        {name: (response.status_code, response.text[:300]) for name, response in answers.items()}
    )


@FUZZ
@given(body=st.binary(max_size=400), content_type=st.sampled_from(CONTENT_TYPES[:3]))
def test_random_bytes(services, client, body, content_type):
    _same_status(services, client, body, content_type, None)


@FUZZ
@given(body=json_ish())
def test_random_json(services, client, body):
    _same_status(services, client, body, "application/json", None)


@FUZZ
@given(body=predict_objects(), query=st.none() | st.sampled_from(PROBABILITIES))
def test_random_image_values(services, client, body, query):
    _same_status(services, client, body, "application/json", query)


@FUZZ
@given(image=mutated_image())
def test_mutated_images(services, client, image):
    """200 or 422 from each service (decoders may differ on damage); where all answer 200, the same probabilities."""
    body = json.dumps({"image": _b64(image)}).encode()
    answers = _answers(services, client, body, "application/json", "true")
    statuses = {name: response.status_code for name, response in answers.items()}
    event(f"status {'/'.join(str(status) for status in sorted(set(statuses.values())))}")
    assert set(statuses.values()) <= {200, 422}, f"{statuses} for {image[:200]!r}"
    if set(statuses.values()) == {200}:
        served = {name: np.array([response.json()["probabilities"]]) for name, response in answers.items()}
        failures = disagreements(["the mutated image"], served)
        assert not failures, "\n".join(failures) + f"\nfor {image!r}"


@FUZZ
@given(
    body=st.one_of(
        predict_objects(), st.sampled_from(SEEDS).map(lambda data: json.dumps({"image": _b64(data)}).encode())
    ),
    content_type=st.none()
    | st.sampled_from(CONTENT_TYPES)
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip),
)
def test_random_content_types(services, client, body, content_type):
    _same_status(services, client, body, content_type, None)
