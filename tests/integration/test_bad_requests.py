"""The bad-request catalogue (``docs/contract.md``): every case against all three services in containers.

Each case is one request and the status code the contract gives it. Refusals are a 4xx with JSON
``{"detail": "<str>"}``; a handful of *valid edge images* (1×1, 16-bit, animated PNG, interlaced, corrupt scan
data that libjpeg decodes with a warning) must be 200 everywhere, with the same probabilities. For every case ×
service: that code, no 5xx, an answer within the client timeout, and ``GET /`` healthy afterwards. The table of
codes (case → status per service) is written to ``/tmp/model-serving-bad-requests.md`` (README material) when the
module finishes.

The codes are the contract's, section by section (§1 HTTP, §2 the body, §3 the image); this file decides
nothing. Where the contract says the services may differ (its last section), a case says which other codes which
service may give (:attr:`Case.may_differ`), and only there: the three JPEG files that libjpeg decodes but Pillow
does not identify (a TEM marker, a JFIF segment too short for its version, an ICC chunk without its count) are
422 from the Python services, 200 or 422 from rust-onnx-serving.

Cases that check a rule rather than an unusable body are built so that a lenient reading would answer 200: the
base64 with a pad after a whole group, or with nonzero unused bits, decodes (leniently) to a valid PNG; the
``NaN``, ``Infinity`` and lone surrogates sit beside a valid image as well as in it.

The configured limits (small ``MAX_BODY_BYTES`` and ``MAX_PIXELS``, a tiny ``REQUEST_TIMEOUT_S``) are checked at
the end, each on a dedicated container per service.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from model_serving.agreement import disagreements
from model_serving.docker.containers import run_service
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration

TABLE_PATH = Path("/tmp/model-serving-bad-requests.md")
#: No request may take longer than this (a hang is a failure, not a wait).
CLIENT_TIMEOUT_S = 30.0
JSON = {"content-type": "application/json"}


# --- images, made in code -------------------------------------------------------------------------------------


def _scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A small RGB image with some structure (gradients plus noise), so JPEG has real scan data."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=-1)
    pixels = np.clip(pixels + rng.integers(-20, 20, pixels.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, bit_depth: int, color_type: int, raw: bytes, interlace: int = 0) -> bytes:
    """A PNG made chunk by chunk: IHDR as given, ``raw`` (filtered scanlines) deflated into one IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` RGB (a decompression bomb's header)."""
    return _png(width, height, 8, 2, b"\x00" * 64)


def _png_16bit_rgb(width: int = 8, height: int = 8) -> bytes:
    rng = np.random.default_rng(16)
    rows = rng.integers(0, 65536, (height, width, 3), dtype=np.uint16).astype(">u2").tobytes()
    stride = width * 6
    raw = b"".join(b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height))
    return _png(width, height, 16, 2, raw)


def _png_interlaced(width: int = 9, height: int = 7) -> bytes:
    """An 8-bit RGB Adam7-interlaced PNG (Pillow cannot write one)."""
    pixels = np.asarray(_scene(width, height, seed=7))
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    return _png(width, height, 8, 2, raw, interlace=1)


def _apng() -> bytes:
    frames = [_scene(16, 16, seed=s) for s in (1, 2)]
    return _save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    return _save(_scene(width, height), "JPEG", quality=90)


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG with its SOF0 size fields rewritten (a decompression bomb's header)."""
    data = bytearray(_jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _jpeg_scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]


def _jpeg_corrupt_scan() -> bytes:
    """Scan data overwritten in the middle (markers avoided): libjpeg warns and decodes."""
    data = bytearray(_jpeg())
    start = _jpeg_scan_start(bytes(data))
    middle = start + (len(data) - start) // 2
    data[middle : middle + 32] = b"\x55" * 32
    return bytes(data)


def _jpeg_bad_huffman() -> bytes:
    """The first Huffman table's code counts all 0xFF: more codes than fit (libjpeg: "Bogus Huffman table")."""
    data = bytearray(_jpeg())
    dht = data.index(b"\xff\xc4")
    data[dht + 5 : dht + 21] = b"\xff" * 16
    return bytes(data)


def _jpeg_with(extra: bytes) -> bytes:
    """The small JPEG with ``extra`` inserted after its first segment (APP0)."""
    data = _jpeg()
    at = 4 + struct.unpack(">H", data[4:6])[0]
    return data[:at] + extra + data[at:]


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _png_transparent_index_without_palette() -> bytes:
    """A palette PNG whose tRNS names one transparent index but which has no PLTE."""
    ihdr = struct.pack(">IIBBBBB", 4, 2, 8, 3, 0, 0, 0)
    raw = b"\x00\x00\x01\x02\x03" * 2
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"tRNS", b"\xff\x00")
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def _png_bad_crc() -> bytes:
    data = bytearray(_save(_scene(8, 8), "PNG"))
    data[29] ^= 0xFF  # the last byte of IHDR's CRC
    return bytes(data)


def _png_corrupt_idat() -> bytes:
    """Deflate data that is not deflate (the chunk CRC is valid, so only inflating fails)."""
    raw = b"".join(b"\x00" + bytes(24) for _ in range(8))
    good = zlib.compress(raw)
    bad = good[:2] + bytes(b ^ 0xA5 for b in good[2:])
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", bad) + _chunk(b"IEND", b"")


def _png_of_length(remainder: int) -> bytes:
    """A valid PNG whose length leaves ``remainder`` when divided by 3 (a tEXt chunk of the right size added):
    its base64 ends in no pad (0), ``==`` (1) or ``=`` (2)."""
    png = _save(_scene(16, 12), "PNG")
    text = b"c\x00" + b"x" * ((remainder - len(png) - 14) % 3)
    at = 8 + 25  # after the signature and IHDR
    png = png[:at] + _chunk(b"tEXt", text) + png[at:]
    assert len(png) % 3 == remainder
    return png


def _with_unused_bits_set(encoded: str) -> str:
    """``encoded`` (ending in ``=`` or ``==``) with a nonzero unused bit in its last group: the same bytes to a
    lenient decoder, not the canonical encoding (RFC 4648 §3.5)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = len(encoded.rstrip("=")) - 1
    changed = encoded[:last] + alphabet[alphabet.index(encoded[last]) | 1] + encoded[last + 1 :]
    assert changed != encoded
    assert base64.b64decode(changed) == base64.b64decode(encoded)
    return changed


def _animated_gif() -> bytes:
    frames = [_scene(16, 16, seed=s).convert("P") for s in (1, 2)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


# --- requests ---------------------------------------------------------------------------------------------------


def _body(image: bytes) -> bytes:
    return json.dumps({"image": base64.b64encode(image).decode()}).encode()


def _image_field(value: object) -> bytes:
    return json.dumps({"image": value}).encode()


@dataclass(frozen=True)
class Case:
    name: str
    #: The contract's code, and every service's where the contract does not let them differ.
    expected: int
    body: bytes = b""
    method: str = "POST"
    path: str = "/predict/"
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    #: Sent over a raw socket that stops writing once the answer arrives (a refusal before the body is read).
    raw: bool = False
    #: Other codes a service may give, only where docs/contract.md says the services may differ.
    may_differ: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def allowed(self, service: str) -> tuple[int, ...]:
        return (self.expected, *self.may_differ.get(service, ()))

    def expectation(self) -> str:
        """The expected code as the status table shows it, e.g. ``422 (rust-onnx-serving: 200 or 422)``."""
        others = [f"{name}: {' or '.join(map(str, sorted(self.allowed(name))))}" for name in self.may_differ]
        return f"{self.expected} ({'; '.join(others)})" if others else str(self.expected)


#: The JPEG files libjpeg decodes but Pillow does not identify (docs/contract.md, where the services may differ).
PILLOW_REFUSES_LIBJPEG_DECODES = {"rust-onnx-serving": (200,)}


_OVER_16_MIB = 16 * 1024 * 1024 + 1024


def _cases() -> list[Case]:
    png = _save(_scene(32, 24), "PNG")
    jpeg = _jpeg()
    b64_png = base64.b64encode(png).decode()
    deep = 100_000

    def beside_image(member: bytes) -> bytes:
        """A valid body with one more member, ``"x": <member>`` (raw JSON text)."""
        return b'{"image": "' + b64_png.encode() + b'", "x": ' + member + b"}"

    return [
        # -- §2.1–2.3: the body is not UTF-8 JSON per RFC 8259, or nests deeper than 32 (400)
        Case("empty body", 400, b""),
        Case("malformed JSON", 400, b'{"image": '),
        Case("trailing garbage after JSON", 400, _body(png) + b" x"),
        Case("invalid UTF-8", 400, b'{"image": "\xff\xfe"}'),
        Case("JSON with a UTF-8 BOM", 400, b"\xef\xbb\xbf" + _body(png)),
        Case("UTF-16 body (with BOM)", 400, _body(png).decode().encode("utf-16")),
        Case("UTF-16LE body (no BOM)", 400, _body(png).decode().encode("utf-16-le")),
        Case("UTF-32 body", 400, _body(png).decode().encode("utf-32")),
        Case("image NaN", 400, b'{"image": NaN}'),
        Case("Infinity beside image", 400, beside_image(b"Infinity")),
        Case("-Infinity beside image", 400, beside_image(b"[-Infinity]")),
        Case("lone surrogate in image", 400, b'{"image": "\\ud800' + b64_png.encode() + b'"}'),
        Case("lone surrogate beside image", 400, beside_image(b'"\\udc00"')),
        Case("lone surrogate in a member name", 400, b'{"\\ud83d": 1, "image": "' + b64_png.encode() + b'"}'),
        Case("deeply nested arrays", 400, b"[" * deep + b"]" * deep),
        Case("nested 33 deep beside image", 400, beside_image(b"[" * 32 + b"]" * 32)),
        Case("deeply nested beside image", 400, beside_image(b"[" * 40 + b"]" * 40)),
        # -- JSON, but not {"image": "<base64>"} (422)
        Case("JSON array", 422, b"[]"),
        Case("JSON string", 422, json.dumps(b64_png).encode()),
        Case("JSON number", 422, b"42"),
        Case("JSON null", 422, b"null"),
        Case("image missing", 422, b"{}"),
        Case("image under another key", 422, json.dumps({"img": b64_png}).encode()),
        Case("image null", 422, _image_field(None)),
        Case("image number", 422, _image_field(12)),
        Case("image huge integer", 422, b'{"image": ' + b"9" * 5000 + b"}"),
        Case("image 1e999", 422, b'{"image": 1e999}'),
        Case("image boolean", 422, _image_field(True)),
        Case("image array", 422, _image_field([b64_png])),
        Case("image object", 422, _image_field({"data": b64_png})),
        Case("image empty string", 422, _image_field("")),
        Case("base64 invalid characters", 422, _image_field("%%%not base64%%%")),
        Case("base64 bad padding", 422, _image_field("QQ=")),
        Case("base64 missing padding", 422, _image_field("QUJDRA")),
        Case("base64 url-safe alphabet", 422, _image_field("-_-_")),
        Case("base64 with line breaks", 422, _image_field(base64.encodebytes(png).decode())),
        Case("base64 non-ASCII", 422, _image_field("QUJD\u00e9")),
        Case("base64 pad after a whole group", 422, _image_field(base64.b64encode(_png_of_length(0)).decode() + "=")),
        Case(
            "base64 unused bits set (==)",
            422,
            _image_field(_with_unused_bits_set(base64.b64encode(_png_of_length(1)).decode())),
        ),
        Case(
            "base64 unused bits set (=)",
            422,
            _image_field(_with_unused_bits_set(base64.b64encode(_png_of_length(2)).decode())),
        ),
        Case("base64 of text", 422, _body(b"this is not an image, just some text")),
        Case("base64 of random bytes", 422, _body(np.random.default_rng(5).bytes(2048))),
        # -- not a usable image (422)
        Case("JPEG signature only", 422, _body(b"\xff\xd8\xff")),
        Case("JPEG truncated header", 422, _body(jpeg[:40])),
        Case("JPEG truncated scan", 422, _body(jpeg[: len(jpeg) * 2 // 3])),
        Case("JPEG bad Huffman table", 422, _body(_jpeg_bad_huffman())),
        # Files libjpeg decodes but Pillow does not identify: where the contract lets the services differ.
        Case("JPEG with a TEM marker", 422, _body(_jpeg_with(b"\xff\x01")), may_differ=PILLOW_REFUSES_LIBJPEG_DECODES),
        Case(
            "JPEG JFIF segment too short",
            422,
            _body(_jpeg_with(_segment(0xE0, b"JFIF\x00\x01"))),
            may_differ=PILLOW_REFUSES_LIBJPEG_DECODES,
        ),
        Case(
            "JPEG ICC chunk without its count",
            422,
            _body(_jpeg_with(_segment(0xE2, b"ICC_PROFILE\x00\x01"))),
            may_differ=PILLOW_REFUSES_LIBJPEG_DECODES,
        ),
        Case("PNG signature only", 422, _body(png[:8])),
        Case("PNG truncated in IDAT", 422, _body(png[: len(png) * 2 // 3])),
        Case("PNG bad IHDR checksum", 422, _body(_png_bad_crc())),
        Case("PNG corrupt deflate data", 422, _body(_png_corrupt_idat())),
        Case("PNG 0x0", 422, _body(_png(0, 0, 8, 2, b""))),
        Case("PNG transparent index, no palette", 422, _body(_png_transparent_index_without_palette())),
        Case("PNG 16-bit palette (invalid)", 422, _body(_png(4, 4, 16, 3, b"\x00" * 40))),
        Case("PNG bomb 100000x100000", 422, _body(_png_claiming(100_000, 100_000))),
        Case("PNG bomb 10000x10000", 422, _body(_png_claiming(10_000, 10_000))),
        Case("PNG 8000x7000 over MAX_PIXELS", 422, _body(_png_claiming(8000, 7000))),
        Case("JPEG bomb 65500x65500", 422, _body(_jpeg_claiming(65_500, 65_500))),
        Case("PNG 1x20000 strip (resize bomb)", 422, _body(_png(1, 20_000, 8, 0, b"\x00\x00" * 20_000))),
        Case("JPEG 20000x1 strip (resize bomb)", 422, _body(_save(_scene(20_000, 1), "JPEG"))),
        Case("GIF", 422, _body(_save(_scene(16, 16).convert("P"), "GIF"))),
        Case("animated GIF", 422, _body(_animated_gif())),
        Case("BMP", 422, _body(_save(_scene(16, 16), "BMP"))),
        Case("WebP", 422, _body(_save(_scene(16, 16), "WEBP"))),
        Case("TIFF", 422, _body(_save(_scene(16, 16), "TIFF"))),
        # -- valid edge images (200 everywhere)
        Case("PNG 1x1", 200, _body(_save(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"))),
        Case("JPEG 1x1", 200, _body(_save(Image.new("RGB", (1, 1), (10, 200, 10)), "JPEG"))),
        Case(
            "PNG 16-bit gray",
            200,
            _body(_save(Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 999), "PNG")),
        ),
        Case("PNG 16-bit RGB", 200, _body(_png_16bit_rgb())),
        Case("PNG animated (APNG)", 200, _body(_apng())),
        Case("PNG interlaced (Adam7)", 200, _body(_png_interlaced())),
        Case("JPEG corrupt scan data", 200, _body(_jpeg_corrupt_scan())),
        Case("content type with charset", 200, _body(png), headers={"content-type": "application/json; charset=utf-8"}),
        Case("duplicate image keys, last wins", 200, b'{"image": 1, "image": "' + b64_png.encode() + b'"}'),
        Case("nested 32 deep beside image", 200, beside_image(b"[" * 31 + b"]" * 31)),
        Case("surrogate pair beside image", 200, beside_image(b'"\\ud83d\\ude00"')),
        Case("huge numbers beside image", 200, beside_image(b"[-" + b"9" * 5000 + b", 1e999, 1e-999]")),
        Case("POST /predict (no slash)", 200, _body(png), path="/predict"),
        # -- HTTP level
        Case("content type text/plain", 415, _body(png), headers={"content-type": "text/plain"}),
        Case("content type form", 415, _body(png), headers={"content-type": "application/x-www-form-urlencoded"}),
        Case("content type missing", 415, _body(png), headers={}),
        Case("probabilities not a boolean", 422, _body(png), path="/predict/?probabilities=maybe"),
        Case("GET /predict/", 405, method="GET", headers={}),
        Case("GET /predict", 405, method="GET", path="/predict", headers={}),
        Case("PUT /predict/", 405, _body(png), method="PUT"),
        Case("DELETE /", 405, method="DELETE", path="/", headers={}),
        Case("unknown path", 404, _body(png), path="/predict/v2"),
        Case("unknown path GET", 404, method="GET", path="/nothing-here", headers={}),
        Case("body over 16 MiB", 413, b'{"image": "' + b"A" * _OVER_16_MIB + b'"}', raw=True),
    ]


CASES = _cases()


# --- sending ----------------------------------------------------------------------------------------------------


def raw_request(base_url: str, case: Case, timeout: float = CLIENT_TIMEOUT_S) -> tuple[int, dict[str, str], bytes]:
    """Send ``case`` over a plain socket, writing the body in pieces and stopping as soon as an answer arrives.

    A server may refuse a body from its headers (413) and close the connection without reading the rest; an
    ordinary client that writes the whole body first then sees a reset instead of the answer.
    """
    url = urlsplit(base_url)
    head = [f"{case.method} {case.path} HTTP/1.1", f"Host: {url.hostname}:{url.port}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in case.headers.items()]
    head.append(f"Content-Length: {len(case.body)}")
    deadline = time.monotonic() + timeout
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        sock.setblocking(False)
        while sent < len(case.body) and time.monotonic() < deadline:
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break  # the answer is there: stop sending
            except BlockingIOError:
                pass
            try:
                sent += sock.send(case.body[sent : sent + 65536])
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        response = b""
        try:
            while chunk := sock.recv(65536):
                response += chunk
        except ConnectionResetError:
            pass
    head_bytes, _, payload = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split(" ", 2)[1]), headers, payload


def send(client: httpx.Client, base_url: str, case: Case) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names in lower case) and body of the answer to ``case``."""
    if case.raw:
        return raw_request(base_url, case)
    response = client.request(
        case.method, base_url + case.path, content=case.body or None, headers=case.headers, timeout=CLIENT_TIMEOUT_S
    )
    return response.status_code, dict(response.headers), response.content


def check_answer(status: int, payload: bytes) -> str | None:
    """What is wrong with an answer under the error contract, or None."""
    if status >= 500:
        return f"a {status}: {payload[:300]!r}"
    try:
        document = json.loads(payload)
    except ValueError:
        return f"the body is not JSON: {payload[:300]!r}"
    if status == 200:
        return None if isinstance(document, dict) and isinstance(document.get("prediction"), str) else f"{document}"
    if not (isinstance(document, dict) and isinstance(document.get("detail"), str)):
        return f'the body is not {{"detail": <str>}}: {document}'
    return None


# --- the tests --------------------------------------------------------------------------------------------------

_seen: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http
    if _seen:
        table = status_table(_seen)
        TABLE_PATH.write_text(table)
        print(f"\nstatus codes ({TABLE_PATH}):\n{table}")


def status_table(seen: dict[str, dict[str, int]]) -> str:
    lines = ["| case | expected | " + " | ".join(SERVICE_NAMES) + " |", "| --- | --- |" + " --- |" * len(SERVICE_NAMES)]
    for case in CASES:
        if case.name in seen:
            got = [str(seen[case.name].get(name, "–")) for name in SERVICE_NAMES]
            lines.append(f"| {case.name} | {case.expectation()} | " + " | ".join(got) + " |")
    return "\n".join(lines) + "\n"


#: Every code docs/contract.md gives a request, but 504 (a timeout: test_request_timeout).
CONTRACT_CODES = {200, 400, 404, 405, 413, 415, 422}


def test_the_catalogue_is_big_enough():
    assert len(CASES) >= 80
    assert len({case.name for case in CASES}) == len(CASES)
    assert {case.expected for case in CASES} == CONTRACT_CODES
    by_code = {code: sum(case.expected == code for case in CASES) for code in CONTRACT_CODES}
    assert by_code[400] >= 15, by_code
    assert by_code[422] >= 40, by_code
    assert by_code[200] >= 12, by_code
    # Services may differ only where the contract says so: the three JPEG files Pillow does not identify.
    differing = [case for case in CASES if case.may_differ]
    assert [case.name for case in differing] == [
        "JPEG with a TEM marker",
        "JPEG JFIF segment too short",
        "JPEG ICC chunk without its count",
    ]
    assert all(set(case.may_differ) <= set(SERVICE_NAMES) for case in differing)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_bad_request(services, client, name, case):
    base_url = services[name].base_url
    started = time.monotonic()
    status, headers, payload = send(client, base_url, case)
    elapsed = time.monotonic() - started
    _seen.setdefault(case.name, {})[name] = status
    problem = check_answer(status, payload)
    assert problem is None, f"{name} answered {case.name!r} with {problem}"
    assert status in case.allowed(name), (
        f"{name}: {case.name!r} gave {status} (expected {case.expectation()}): {payload[:300]!r}"
    )
    assert elapsed < CLIENT_TIMEOUT_S
    if urlsplit(case.path).path in ("/predict/", "/predict"):  # every answer there says where its time went
        assert "total;dur=" in headers.get("server-timing", ""), f"{name}: {case.name!r}: no Server-Timing: {headers}"
    health = client.get(base_url + "/", timeout=10)
    assert health.status_code == 200, f"{name} unhealthy after {case.name!r}"
    assert health.json()["status"] == "healthy"


def test_valid_edge_images_get_the_same_probabilities(services, client):
    """The 200 cases classified alike by all three (DESIGN §3 agreement: max |Δp| ≤ 1e-3, margin-aware top-1)."""
    valid = [case for case in CASES if case.expected == 200 and case.path == "/predict/" and not case.may_differ]
    served = {}
    for name in SERVICE_NAMES:
        rows = []
        for case in valid:
            response = client.post(
                services[name].base_url + "/predict/?probabilities=true",
                content=case.body,
                headers=case.headers,
                timeout=CLIENT_TIMEOUT_S,
            )
            assert response.status_code == 200, f"{name}: {case.name}: {response.text}"
            rows.append(response.json()["probabilities"])
        served[name] = np.array(rows, dtype=np.float64)
    names = [case.name for case in valid]
    failures = disagreements(names, served, report=lambda line: print(f"edge images, {line}"))
    assert not failures, "\n".join(failures)


# --- the configured limits, one dedicated container per service --------------------------------------------------

SMALL_LIMITS = {"MAX_BODY_BYTES": "100000", "MAX_PIXELS": "10000"}


def _png_body(width: int, height: int) -> bytes:
    return _body(_save(_scene(width, height), "PNG"))


def _assert_detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    return detail


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_configured_body_and_pixel_limits(service_images, cpus, name, benchmark_body):
    with run_service(name, service_images[name].tag, cpus, env=SMALL_LIMITS) as service, httpx.Client() as http:
        url = service.base_url + "/predict/"
        # The 294 KB benchmark body, declared and streamed (chunked, no Content-Length).
        status, _, payload = raw_request(service.base_url, Case("over MAX_BODY_BYTES", 413, benchmark_body, raw=True))
        assert status == 413
        expected = f"request body is {len(benchmark_body)} bytes; the limit is 100000"
        assert json.loads(payload)["detail"] == expected
        pieces = (benchmark_body[i : i + 8192] for i in range(0, len(benchmark_body), 8192))
        chunked = http.post(url, content=pieces, headers=JSON, timeout=CLIENT_TIMEOUT_S)
        assert _assert_detail(chunked, 413) == "request body exceeds the limit of 100000 bytes"
        # MAX_PIXELS: 100×100 is at the limit, 101×100 over it.
        assert http.post(url, content=_png_body(100, 100), headers=JSON, timeout=CLIENT_TIMEOUT_S).status_code == 200
        over = http.post(url, content=_png_body(101, 100), headers=JSON, timeout=CLIENT_TIMEOUT_S)
        assert _assert_detail(over, 422) == "image is 101x100 pixels; the limit is 10000 pixels"
        assert http.get(service.base_url + "/", timeout=10).status_code == 200


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_request_timeout(service_images, cpus, name, benchmark_body):
    """REQUEST_TIMEOUT_S=0.001: a prediction (tens of ms) is answered 504 at once, and the service lives on."""
    with run_service(name, service_images[name].tag, cpus, env={"REQUEST_TIMEOUT_S": "0.001"}) as service:
        with httpx.Client() as http:
            for _ in range(3):
                started = time.monotonic()
                response = http.post(
                    service.base_url + "/predict/", content=benchmark_body, headers=JSON, timeout=CLIENT_TIMEOUT_S
                )
                elapsed = time.monotonic() - started
                detail = _assert_detail(response, 504)
                assert detail == "the request took longer than REQUEST_TIMEOUT_S (0.001 s) to process"
                # Answered at the timeout, not after the decode and inference it abandoned.
                assert elapsed < 2.0, elapsed
                health = http.get(service.base_url + "/", timeout=10)
                assert health.status_code == 200
                assert health.json()["status"] == "healthy"
            # Refusals made before the work is handed over keep their codes.
            assert http.post(service.base_url + "/predict/", content=b"{}", timeout=10).status_code == 415
        logs = service.logs()
        assert '"request_timeout_s": 0.001' in logs or '"request_timeout_s":0.001' in logs, logs
