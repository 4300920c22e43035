"""Parsing ``POST /predict/`` bodies: ``{"image": "<base64 of the image file>"}`` → image file bytes.

The rules are ``docs/contract.md`` §2: UTF-8 without a byte order mark, JSON per RFC 8259 (no ``NaN`` or
``Infinity``, no lone surrogate escapes), nesting at most :data:`MAX_JSON_DEPTH` deep (400); an object whose
``image`` is a non-empty string in strict, canonical standard base64 (422). The standard library's ``json`` reads
the text; what it accepts beyond RFC 8259 is refused here.
"""

from __future__ import annotations

import binascii
import codecs
import json
import re
from typing import Any

import pybase64

from serving_common.errors import bad_request, unprocessable

#: Arrays and objects nested deeper than this are refused (the body's object is depth 1).
MAX_JSON_DEPTH = 32


# --- base64 (RFC 4648 §4, canonical as §3.5 defines it) ---------------------------------------------------------


def decode_base64(text: str | bytes | memoryview) -> bytes | None:
    """The bytes of strict, canonical standard base64, or None for anything else.

    pybase64's ``validate=True`` (SIMD: 2 ms → 0.03 ms for the benchmark's 228 KB against CPython) refuses
    characters outside ``A-Z a-z 0-9 + /``, a length that is not a multiple of 4 and ``=`` anywhere but the last
    one or two places (CPython's ``validate=True`` takes pads after a whole group: ``QUJD=``). Neither refuses
    nonzero unused bits in the last group (``QR==`` for ``QQ==``): the decoded last group must encode back to
    the text's.
    """
    try:
        data: bytes = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data:
        return data
    last_group = data[-(len(data) % 3 or 3) :]
    written = text[-4:]
    written_bytes = written.encode() if isinstance(written, str) else bytes(written)
    return data if pybase64.b64encode(last_group) == written_bytes else None


_NOT_ALPHABET = re.compile(r"[^A-Za-z0-9+/=]")
_PAD_INSIDE = re.compile(r"=+[^=]")


def _base64_problem(text: str) -> str:
    """What makes ``text`` (which :func:`decode_base64` refused) not strict canonical base64, in words."""
    if bad := _NOT_ALPHABET.search(text):
        return f"character {bad.group()!r} at {bad.start()} is not in the standard alphabet (A-Z a-z 0-9 + /)"
    if len(text) % 4:
        return f"its length {len(text)} is not a multiple of 4 (padded with '=')"
    if _PAD_INSIDE.search(text) or text.endswith("==="):
        return "'=' is only allowed as the last one or two characters"
    return "the unused bits of its last group are not zero (not the canonical encoding)"


# --- JSON (RFC 8259) ----------------------------------------------------------------------------------------------


class _NotRfc8259(ValueError):
    """Text Python's ``json`` takes that RFC 8259 does not (``NaN``, ``Infinity``, ``-Infinity``)."""


def _refuse_constant(name: str) -> Any:
    raise _NotRfc8259(f"{name} is not a JSON number")


def _number(_: str) -> int:
    """Numbers are checked for syntax only, never converted: Python refuses to convert an integer of more than 4300
    digits (a ValueError), and only the type of a value matters here."""
    return 0


# A JSON escape, read from the left (so that ``\\`` is one escape): a surrogate pair, which is one scalar value;
# a surrogate alone (group 1); or any other escape. Outside strings a backslash is not JSON, so in text that
# parsed every backslash starts an escape.
_ESCAPE = re.compile(
    r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(u[dD][89a-fA-F][0-9a-fA-F]{2})|.)", re.DOTALL
)


def _has_lone_surrogate(text: str) -> bool:
    """An escape in ``text`` (parsed JSON) that is not a Unicode scalar value, such as ``"\\ud800"``, which
    ``json.loads`` turns into a lone surrogate. Checked in the text, not the parsed document, so that keys and
    the members a duplicate name replaced count too."""
    # "\\" in text is a memchr (3 µs on the benchmark's 390 KB; a two-character search took 1.2 ms).
    return "\\" in text and any(escape.group(1) for escape in _ESCAPE.finditer(text))


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _too_deep(text: str) -> bool:
    """Arrays and objects in ``text`` (parsed JSON) nested deeper than :data:`MAX_JSON_DEPTH`, counted on the text
    outside strings, so that members a duplicate name replaced count too. Text that opens no more than that many
    (the usual body opens one) is not scanned."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


# --- the body -----------------------------------------------------------------------------------------------------

# The body every client sends: one object with one member, `{"image": "<base64>"}`, with any JSON whitespace.
_ONE_MEMBER_HEAD = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"image"[ \t\n\r]*:[ \t\n\r]*"')
_ONE_MEMBER_TAIL = re.compile(rb'"[ \t\n\r]*\}[ \t\n\r]*')


def _one_member_image(body: bytes) -> bytes | None:
    """The image of a body that is exactly ``{"image": "<strict base64>"}``, read without building the JSON document
    (``json.loads`` scans and copies the 390 KB string: in-process the benchmark body's parse took 0.37 ms, now 0.04);
    None for any other body, which :func:`parse_predict_body` then parses in full.

    Exact, not a second grammar: text that strict base64 accepts holds only ``A-Z a-z 0-9 + / =``, so no quote,
    backslash, control character or non-ASCII byte, and the body is then that one-member object (ASCII, so UTF-8
    without a BOM; depth 1; no escape), whose full parse gives these bytes.
    """
    head = _ONE_MEMBER_HEAD.match(body)
    if head is None:
        return None
    quote = body.rfind(b'"')
    if quote < head.end() or _ONE_MEMBER_TAIL.fullmatch(body, quote) is None:
        return None
    return decode_base64(memoryview(body)[head.end() : quote]) or None


def parse_predict_body(body: bytes) -> bytes:
    """The image file bytes, or an :class:`ApiError` that says what is wrong with the body."""
    data = _one_member_image(body)
    return data if data is not None else _parsed_image(body)


def _parsed_image(body: bytes) -> bytes:
    """:func:`parse_predict_body` through ``json.loads``: any body."""
    document = _json_document(body)
    if not isinstance(document, dict):
        raise unprocessable(f"request body must be a JSON object, got {_json_type(document)}")
    if "image" not in document:
        raise unprocessable("field 'image' is missing")
    image = document["image"]
    if not isinstance(image, str):
        raise unprocessable(f"field 'image' must be a base64 string, got {_json_type(image)}")
    if not image:
        raise unprocessable("field 'image' is empty")
    data = decode_base64(image)
    if data is None:
        raise unprocessable(f"field 'image' is not strict base64 (RFC 4648 §4): {_base64_problem(image)}")
    return data


def _json_document(body: bytes) -> Any:
    """The body as JSON per RFC 8259 (``docs/contract.md`` §2, rules 1–3), or a 400 that says why not."""
    if not body:
        raise bad_request('request body is empty; send JSON {"image": "<base64>"}')
    if body.startswith(codecs.BOM_UTF8):
        raise bad_request("request body starts with a byte order mark; send UTF-8 without one")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise bad_request(f"request body is not UTF-8: {error}") from None
    too_deep = bad_request(f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_int=_number, parse_float=_number)
    except ValueError as error:  # json.JSONDecodeError or _NotRfc8259
        raise bad_request(f"request body is not valid JSON: {error}") from None
    except RecursionError:  # nested far deeper than the limit
        raise too_deep from None
    if _has_lone_surrogate(text):
        raise bad_request("request body is not valid JSON: a \\u escape is a lone surrogate, not a character")
    if _too_deep(text):
        raise too_deep
    return document


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )
