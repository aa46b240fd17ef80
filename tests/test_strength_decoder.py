"""Decoder behaviours that the first mutation run showed no test would notice breaking.

Each test names the answer a user could get from WeChat (or a proxy in front of it) and what
wxqr must do with it. Companion of ``tests/test_decoder.py``.
"""

from __future__ import annotations

import io
import json
import math

import httpx
import pytest
from mockwechat import PNG
from PIL import Image

import wxqr
from wxqr._decoder import decode


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buf, format="JPEG")
    return buf.getvalue()


JPEG = _jpeg()
GIF_BODY = b"GIF89a" + b"\x00" * 20 + b";"
RID = "617682e0-09059ac5-34a8e2ea"


def image(body: bytes, content_type: str = "image/jpeg", status: int = 200) -> bytes:
    headers = httpx.Headers({"content-type": content_type})
    return decode(status, headers, body, expect="image", endpoint="wxa/getwxacode")


def as_json(body: bytes, content_type: str = "application/json", status: int = 200):
    headers = httpx.Headers({"content-type": content_type})
    return decode(status, headers, body, expect="json", endpoint="cgi-bin/shorten/fetch")


# -- images: complete means the trailer is the LAST thing in the body --------------------------


@pytest.mark.parametrize(
    "body",
    [
        # A JPEG cut short whose remaining tail still holds an FF D9 (an embedded thumbnail's
        # end-of-image marker, or the byte pair inside the data) is still a truncated JPEG.
        pytest.param(JPEG[:-12] + b"\xff\xd9" + b"\x12\x34\x56\x78\x9a\xbc", id="ffd9-6-from-end"),
        pytest.param(JPEG[:-2] + b"\xff\xd9\x01", id="ffd9-then-one-byte"),
        pytest.param(JPEG[: len(JPEG) // 2] + b"\xff\xd9" + JPEG[-200:-190], id="cut-mid-body"),
    ],
)
def test_a_truncated_jpeg_with_ffd9_before_its_end_is_refused(body):
    assert body.startswith(b"\xff\xd8\xff")
    assert b"\xff\xd9" in body[-16:]
    with pytest.raises(wxqr.ResponseDecodeError, match="truncated"):
        image(body)
    assert wxqr.image_kind(body) is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(JPEG, id="exact"),
        pytest.param(JPEG + b"\x00" * 8, id="nul-padding-after-eoi"),
    ],
)
def test_a_complete_jpeg_is_accepted_with_or_without_padding(body):
    result = image(body, "image/jpg")
    assert result == body
    assert result.kind == "jpeg"
    assert wxqr.image_kind(body) == "jpeg"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        pytest.param(PNG + b"\x00" * 10, "png", id="png-nul-padding"),
        pytest.param(GIF_BODY, "gif", id="gif89a"),
        pytest.param(b"GIF87a" + b"\x00" * 20 + b";", "gif", id="gif87a"),
        pytest.param(GIF_BODY + b"\x00" * 3, "gif", id="gif-nul-padding"),
    ],
)
def test_padded_and_both_gif_flavours_are_images(body, kind):
    assert wxqr.image_kind(body) == kind
    assert image(body, "image/gif") == body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(PNG[:-12] + b"IEND\xaeB`\x82" + b"\x00\x01", id="png-trailer-then-junk"),
        pytest.param(b"GIF89a" + b"\x00" * 20, id="gif-no-trailer"),
        pytest.param(b"GIF89a;" + b"\x00" * 4 + b"x", id="gif-junk-after-trailer"),
        pytest.param(PNG + b"X", id="png-then-X"),
        pytest.param(JPEG + b"\x00X", id="jpeg-then-X"),
        pytest.param(GIF_BODY + b"X", id="gif-then-X"),
    ],
)
def test_png_and_gif_need_their_trailer_at_the_end(body):
    assert wxqr.image_kind(body) is None
    with pytest.raises(wxqr.ResponseDecodeError, match="truncated"):
        image(body)


# The smallest bodies the decoder calls complete: magic bytes, then the trailer.
TINY = {
    "png": b"\x89PNG\r\n\x1a\n" + b"IEND\xaeB`\x82",
    "jpeg": b"\xff\xd8\xff\xe0" + b"\xff\xd9",
    "gif": b"GIF89a;",
}
TRAILER = {"png": 8, "jpeg": 2, "gif": 1}


@pytest.mark.parametrize("kind", ["png", "jpeg", "gif"])
def test_a_tiny_complete_image_is_an_image(kind):
    assert wxqr.image_kind(TINY[kind]) == kind
    assert image(TINY[kind]) == TINY[kind]


@pytest.mark.parametrize("kind", ["png", "jpeg", "gif"])
def test_nul_padding_is_tolerated_within_the_64_byte_tail_only(kind):
    # Only the last 64 bytes are inspected (no copy of a large image): the trailer must be there.
    fits = 64 - TRAILER[kind]
    assert wxqr.image_kind(TINY[kind] + b"\x00" * fits) == kind
    assert wxqr.image_kind(TINY[kind] + b"\x00" * (fits + 1)) is None


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/html", id="text-html"),
        pytest.param("TEXT/HTML; charset=UTF-8", id="upper-case-html"),
        pytest.param("Application/JSON", id="mixed-case-json"),
        pytest.param("application/json; encoding=utf-8", id="json-with-param"),
        pytest.param(" application/json ; a=1; b=2", id="json-with-two-params"),
    ],
)
def test_image_bytes_labelled_html_or_json_are_refused(content_type):
    # A proxy's error page or an emulator mislabelling: ambiguous, so never returned as an image.
    with pytest.raises(wxqr.ResponseDecodeError) as info:
        image(PNG, content_type)
    label = content_type.split(";")[0].strip().lower()  # the media type, without parameters
    assert str(info.value) == (
        f"wxa/getwxacode: image bytes labelled {label!r}; refusing an ambiguous answer"
    )
    assert info.value.endpoint == "wxa/getwxacode"


def test_a_plain_dict_of_headers_is_read_too():
    assert decode(200, {"content-type": "image/png"}, PNG, expect="image", endpoint="x") == PNG
    with pytest.raises(wxqr.ResponseDecodeError, match="labelled"):
        decode(200, {"content-type": "text/html"}, PNG, expect="image", endpoint="x")
    assert decode(200, {}, PNG, expect="image", endpoint="x") == PNG


# -- HTTP status: only 2xx is success ---------------------------------------------------------


@pytest.mark.parametrize("status", [100, 199, 300, 301, 302, 304])
def test_a_status_outside_2xx_is_never_success(status):
    with pytest.raises(wxqr.HTTPStatusError) as info:
        image(PNG, "image/png", status=status)
    assert info.value.status_code == status
    assert info.value.endpoint == "wxa/getwxacode"
    assert str(info.value) == f"wxa/getwxacode: HTTP {status}"
    with pytest.raises(wxqr.HTTPStatusError):
        as_json(b'{"errcode":0,"errmsg":"ok"}', status=status)


@pytest.mark.parametrize("status", [200, 201, 299])
def test_every_2xx_status_is_success(status):
    assert image(PNG, "image/png", status=status) == PNG
    assert as_json(b'{"errcode":0,"errmsg":"ok"}', status=status) == {"errcode": 0, "errmsg": "ok"}


def test_a_404_on_showqrcode_only_is_ticket_not_found():
    headers = httpx.Headers({"content-type": "text/html"})
    with pytest.raises(wxqr.TicketNotFoundError) as info:
        decode(404, headers, b"", expect="image", endpoint="cgi-bin/showqrcode")
    assert info.value.endpoint == "cgi-bin/showqrcode"
    assert str(info.value) == (
        "cgi-bin/showqrcode: HTTP 404 (ticket unknown, malformed or expired)"
    )
    for status in (403, 410):
        with pytest.raises(wxqr.HTTPStatusError) as other:
            decode(status, headers, b"", expect="image", endpoint="cgi-bin/showqrcode")
        assert type(other.value) is wxqr.HTTPStatusError


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'{"errcode":45009,"errmsg":"quota"}', wxqr.QuotaExceededError, id="quota"),
        pytest.param(
            b'\xef\xbb\xbf {"errcode":-1,"errmsg":"busy"}', wxqr.SystemBusyError, id="bom"
        ),
        pytest.param(b'{"errcode":"-1","errmsg":"busy"}', wxqr.SystemBusyError, id="string-code"),
        pytest.param(b'{"errcode":1,"errmsg":"odd"}', wxqr.APIError, id="errcode-1"),
        pytest.param(b'{"errcode":12345,"errmsg":"new"}', wxqr.APIError, id="unknown-errcode"),
    ],
)
def test_wechat_json_behind_a_proxy_error_status_keeps_its_type(body, expected):
    with pytest.raises(expected) as info:
        as_json(body, status=502)
    assert type(info.value) is expected
    assert info.value.endpoint == "cgi-bin/shorten/fetch"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"errcode":0,"errmsg":"ok"}', id="errcode-0"),
        pytest.param(b'{"detail":"bad gateway"}', id="no-errcode"),
        pytest.param(b"[1, 2]", id="json-array"),
        pytest.param(b'{"errcode":', id="truncated-json"),
        # a gateway's own JSON: its "errcode" is not WeChat's, the status is the news
        pytest.param(b'{"errcode":"GATEWAY_TIMEOUT"}', id="gateway-text-errcode"),
        pytest.param(b'{"errcode":true}', id="bool-errcode"),
    ],
)
def test_other_bodies_behind_a_5xx_are_a_plain_status_error(body):
    with pytest.raises(wxqr.HTTPStatusError) as info:
        as_json(body, status=503)
    assert type(info.value) is wxqr.HTTPStatusError
    assert info.value.status_code == 503


def test_deep_json_behind_a_5xx_is_a_status_error_not_a_recursion_error():
    deep = b'{"errcode":-1,"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(wxqr.HTTPStatusError) as info:
        as_json(deep, status=503)
    assert info.value.status_code == 503


def test_deep_json_on_success_is_a_decode_error_not_a_recursion_error():
    deep = b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(wxqr.ResponseDecodeError, match="malformed JSON") as info:
        as_json(deep)
    assert info.value.__cause__ is None
    assert info.value.endpoint == "cgi-bin/shorten/fetch"
    assert str(info.value) == (
        f"cgi-bin/shorten/fetch: malformed JSON ({len(deep)} bytes): RecursionError"
    )
    with pytest.raises(wxqr.ResponseDecodeError, match="malformed JSON"):
        image(deep)


# -- JSON endpoints: a BOM or whitespace before "{" -----------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(b"\xef\xbb\xbf", id="utf8-bom"),
        pytest.param(b" \t\r\n", id="whitespace"),
        pytest.param(b"\xef\xbb\xbf\r\n", id="bom-and-newline"),
    ],
)
def test_json_after_a_bom_or_whitespace_is_parsed(prefix):
    ok = b'{"errcode":0,"errmsg":"ok","short_key":"iTqRJFSEqk9RvPk"}'
    assert as_json(prefix + ok)["short_key"] == "iTqRJFSEqk9RvPk"
    err = json.dumps({"errcode": 45009, "errmsg": f"quota rid: {RID}"}).encode()
    with pytest.raises(wxqr.QuotaExceededError) as info:
        as_json(prefix + err, "text/plain")
    assert info.value.rid == RID
    assert info.value.errmsg == "quota"


@pytest.mark.parametrize(
    ("errcode", "expected"),
    [
        pytest.param(" 45009 ", wxqr.QuotaExceededError, id="padded-string"),
        pytest.param("0", None, id="string-zero"),
        pytest.param(0, None, id="zero"),
    ],
)
def test_errcode_as_a_string_is_read_as_a_number(errcode, expected):
    body = json.dumps({"errcode": errcode, "errmsg": "x", "k": 1}).encode()
    if expected is None:
        assert as_json(body)["k"] == 1
    else:
        with pytest.raises(expected) as info:
            as_json(body)
        assert info.value.errcode == 45009


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(True, "errcode is a boolean", id="bool"),
        pytest.param(1.5, "errcode is not a number: 1.5", id="float"),
        pytest.param("busy", "errcode is not a number: 'busy'", id="text"),
        pytest.param([1], "errcode is not a number: [1]", id="list"),
    ],
)
def test_an_errcode_that_is_not_a_number_is_a_decode_error(value, message):
    body = json.dumps({"errcode": value}).encode()
    with pytest.raises(wxqr.ResponseDecodeError) as info:
        as_json(body)
    assert str(info.value) == f"cgi-bin/shorten/fetch: {message}"


def test_a_non_string_errmsg_becomes_empty():
    with pytest.raises(wxqr.QuotaExceededError) as info:
        as_json(b'{"errcode":45009,"errmsg":{"zh":"x"}}')
    assert info.value.errmsg == ""


# -- messages name what arrived, never the body ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expect", "message"),
    [
        pytest.param(b"", "", "image", "expected an image, got an empty body (no content type)"),
        pytest.param(b"", "text/plain", "json", "expected JSON, got an empty body (text/plain)"),
        pytest.param(
            b"<html><body>x</body></html>",
            "image/jpeg",
            "image",
            "expected an image, got an HTML page (27 bytes, image/jpeg)",
        ),
        pytest.param(
            b"  <!DOCTYPE HTML>",
            "",
            "json",
            "expected JSON, got an HTML page (17 bytes, no content type)",
        ),
        pytest.param(
            b"<head>", "", "json", "expected JSON, got an HTML page (6 bytes, no content type)"
        ),
        pytest.param(
            b"\xef\xbb\xbf<html>",
            "text/plain",
            "json",
            "expected JSON, got an HTML page (9 bytes, text/plain)",
        ),
        pytest.param(
            b"<body>", "", "json", "expected JSON, got an HTML page (6 bytes, no content type)"
        ),
        pytest.param(
            b"oops", "text/html", "json", "expected JSON, got an HTML page (4 bytes, text/html)"
        ),
        pytest.param(
            b"GIF89a...",
            "image/gif",
            "image",
            "expected an image, got a truncated or incomplete image (9 bytes)",
        ),
        pytest.param(
            PNG, "image/png", "json", f"expected JSON, got a png image ({len(PNG)} bytes)"
        ),
        pytest.param(
            b"garbage!",
            "text/plain",
            "image",
            "expected an image, got 8 unrecognised bytes (text/plain)",
        ),
    ],
)
def test_decode_errors_describe_what_arrived(body, content_type, expect, message):
    headers = httpx.Headers({"content-type": content_type} if content_type else {})
    with pytest.raises(wxqr.ResponseDecodeError) as info:
        decode(200, headers, body, expect=expect, endpoint="wxa/x")
    assert str(info.value) == f"wxa/x: {message}"
    assert info.value.endpoint == "wxa/x"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b'{"errcode":0,"errmsg":"ok"}', "expected an image, got a JSON answer", id="ok"
        ),
        pytest.param(b' {"errcode":0', "malformed JSON (12 bytes): JSONDecodeError", id="cut"),
    ],
)
def test_json_without_an_error_on_an_image_endpoint_names_the_endpoint(body, message):
    with pytest.raises(wxqr.ResponseDecodeError) as info:
        image(body)
    assert str(info.value) == f"wxa/getwxacode: {message}"
    assert info.value.endpoint == "wxa/getwxacode"


@pytest.mark.parametrize(
    ("value", "num_used"),
    [
        pytest.param("999999999999", 999_999_999_999, id="12-digits"),
        pytest.param("1000000000000", None, id="13-digits-refused"),
        pytest.param(" 42 ", 42, id="padded"),
    ],
)
def test_num_used_is_read_up_to_12_digits(value, num_used):
    headers = httpx.Headers({"content-type": "image/png", "num-used": value})
    assert decode(200, headers, PNG, expect="image", endpoint="wxa/getwxacode").num_used == num_used


# -- JSON goes through orjson when it is installed, through json for what orjson refuses ---------
# (or would read differently): the same answer either way, only faster with orjson.


class CountingJson:
    """Stands in for the ``json`` module inside the decoder, recording what it is asked to parse."""

    def __init__(self) -> None:
        self.parsed: list[bytes] = []

    def loads(self, body):
        self.parsed.append(bytes(body))
        return json.loads(body)


@pytest.fixture
def stdlib_json(monkeypatch):
    pytest.importorskip("orjson")  # the `speed` extra
    import wxqr._decoder as decoder_module

    counting = CountingJson()
    monkeypatch.setattr(decoder_module, "json", counting)
    return counting


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"errcode":0,"errmsg":"ok","short_url":"https://w.url.cn/s/A1b2C3d"}'),
        pytest.param(
            b'{"errcode":0,"n":-999999999999999999,"m":999999999999999999}', id="18-digits"
        ),
        pytest.param(b'{"errcode":0,"f":1.5e308,"g":-0.0}', id="floats"),
    ],
)
def test_with_orjson_installed_an_ordinary_answer_never_reaches_json(stdlib_json, body):
    assert as_json(body) == json.loads(body)
    assert stdlib_json.parsed == []


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        pytest.param(b'{"errcode":0,"s":"\\ud800"}', "s", "\ud800", id="lone-surrogate-escape"),
        pytest.param(b'{"errcode":0,"x":1e400}', "x", math.inf, id="overflowing-float"),
        pytest.param(b'{"errcode":0,"n":18446744073709551616}', "n", 2**64, id="2**64"),
        pytest.param(
            b'{"errcode":0,"n":-9223372036854775809}', "n", -(2**63) - 1, id="below-int64"
        ),
        pytest.param(
            b'{"errcode":0,"n":123456789012345678901234567890}',
            "n",
            int("123456789012345678901234567890"),
            id="30-digits",
        ),
    ],
)
def test_what_orjson_refuses_or_reads_differently_json_parses(stdlib_json, body, key, expected):
    value = as_json(body)[key]
    assert value == expected
    assert type(value) is type(expected)  # an exact int, never a rounded float
    assert stdlib_json.parsed == [body]


def test_nan_which_orjson_refuses_is_parsed_by_json(stdlib_json):
    body = b'{"errcode":0,"x":NaN}'
    value = as_json(body)["x"]
    assert math.isnan(value)
    assert stdlib_json.parsed == [body]


@pytest.mark.parametrize("digits", [19, 20, 25])
def test_a_big_integer_in_an_answer_keeps_its_exact_value(digits):
    # Whichever parser is installed: the answer never depends on it.
    number = -int("9" * digits)
    body = b'{"errcode":0,"errmsg":"ok","id":%d}' % number
    data = as_json(body)
    assert data["id"] == number
    assert isinstance(data["id"], int)
