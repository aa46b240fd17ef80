"""Fuzzing the decoder: whatever comes back over the wire, wxqr answers with a result it can
stand behind or a ``WxqrError`` -- never a foreign exception, never error JSON as an image.
"""

from __future__ import annotations

import json

import httpx
from hypothesis import example, given, settings
from hypothesis import strategies as st

import wxqr
from wxqr._decoder import decode

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20 + b"\xff\xd9"
GIF = b"GIF89a" + b"\x01\x00\x01\x00" + b"\x00" * 10 + b";"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
errcodes = st.one_of(
    st.sampled_from([0, -1, 40001, 45009, 45011, 44990, 886001, 9410012, 10**30]),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    json_values,
)


@st.composite
def json_bodies(draw):
    obj = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
    if draw(st.booleans()):
        obj["errcode"] = draw(errcodes)
    if draw(st.booleans()):
        obj["errmsg"] = draw(st.one_of(st.text(max_size=40), json_values))
    text = json.dumps(obj, allow_nan=True)
    prefix = draw(st.sampled_from(["", " ", "\n\t", "\ufeff"]))
    body = (prefix + text).encode()
    cut = draw(st.integers(0, len(body)))
    return body if draw(st.booleans()) else body[:cut]


@st.composite
def image_bodies(draw):
    image = draw(st.sampled_from([PNG, JPEG, GIF]))
    mode = draw(st.sampled_from(["whole", "cut", "padded", "prefixed"]))
    if mode == "cut":
        return image[: draw(st.integers(0, len(image)))]
    if mode == "padded":
        return image + draw(st.binary(max_size=24))
    if mode == "prefixed":
        return draw(st.sampled_from([b"{", b" {", b"<html>", b"\xef\xbb\xbf"])) + image
    return image


bodies = st.one_of(
    st.binary(max_size=64),
    json_bodies(),
    image_bodies(),
    st.sampled_from(
        [
            b"",
            b"<!DOCTYPE html><html><body>busy</body></html>",
            b"[1, 2]",
            b'"text"',
            b"{" * 5000,
            b'{"errcode": ' + b"[" * 5000,
            b"\xff\xfe{\x00",
        ]
    ),
)
content_types = st.one_of(
    st.sampled_from(
        [
            "",
            "image/jpeg",
            "image/png",
            "image/jpg",
            "text/plain",
            "text/html; charset=utf-8",
            "application/json; encoding=utf-8",
            "APPLICATION/JSON",
            "application/octet-stream",
        ]
    ),
    # Header values arrive as bytes and are decoded as latin-1.
    st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=30),
)
endpoints = st.sampled_from(
    ["cgi-bin/showqrcode", "wxa/getwxacodeunlimit", "cgi-bin/qrcode/create", "cgi-bin/token"]
)
statuses = st.one_of(
    st.sampled_from([200, 204, 301, 404, 429, 500, 502, 503]), st.integers(100, 599)
)


def check(status, content_type, body, expect, endpoint, as_httpx):
    headers = {"content-type": content_type} if content_type is not None else {}
    if as_httpx:
        headers = httpx.Headers({k: v.encode("latin-1") for k, v in headers.items()})
    try:
        result = decode(status, headers, body, expect=expect, endpoint=endpoint)
    except wxqr.WxqrError as exc:
        error = exc
    else:
        error = None
    if error is not None:
        assert not isinstance(error, wxqr.ValidationError)  # that one is for arguments only
        assert str(error)
        assert repr(error)
        assert not isinstance(error, wxqr.APIError) or error.errcode != 0
        return
    assert 200 <= status < 300
    if expect == "json":
        assert isinstance(result, dict)
    else:
        assert isinstance(result, bytes)
        assert wxqr.image_kind(result) is not None
        assert not result.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"{")


@settings(max_examples=300, deadline=None)
@given(
    status=statuses,
    content_type=st.none() | content_types,
    body=bodies,
    expect=st.sampled_from(["json", "image"]),
    endpoint=endpoints,
    as_httpx=st.booleans(),
)
@example(200, None, b'{"a": ' + b"[" * 100_000, "json", "cgi-bin/qrcode/create", False)
@example(200, None, b'{"a": ' + b"[" * 100_000, "image", "wxa/getwxacodeunlimit", False)
@example(502, None, b'{"a": ' + b"[" * 100_000, "json", "cgi-bin/qrcode/create", False)
def test_decode_raises_only_wxqr_errors(status, content_type, body, expect, endpoint, as_httpx):
    check(status, content_type, body, expect, endpoint, as_httpx)
