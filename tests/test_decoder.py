"""The decoder: one pure function from (status, headers, body) to a result or a typed error.

WeChat's content types lie (``image/jpeg`` for PNG, ``text/plain`` for JSON), so an image is
returned only when the bytes are a complete image, and error JSON never comes back as bytes.
"""

from __future__ import annotations

import io
import json

import httpx
import pytest
from mockwechat import PNG, FakeWeChat, error
from PIL import Image

import wxqr
from wxqr._decoder import decode


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, format=fmt)
    return buf.getvalue()


JPEG = _image("JPEG")
GIF = _image("GIF")
ERROR_40159 = json.dumps(error(40159)).encode()


def decode_image(body: bytes, content_type: str = "image/jpeg", status: int = 200, **kw):
    headers = httpx.Headers({"content-type": content_type})
    return decode(status, headers, body, expect="image", endpoint=kw.get("endpoint", "wxa/x"))


def decode_json(body: bytes, content_type: str = "application/json", status: int = 200):
    headers = httpx.Headers({"content-type": content_type})
    return decode(status, headers, body, expect="json", endpoint="cgi-bin/shorten/fetch")


# -- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        pytest.param(PNG, "image/jpeg", "png", id="png-labelled-jpeg"),
        pytest.param(PNG, "image/png", "png", id="png"),
        pytest.param(JPEG, "image/jpg", "jpeg", id="jpeg-showqrcode-image-jpg"),
        pytest.param(GIF, "image/gif", "gif", id="gif"),
        pytest.param(PNG, "", "png", id="png-no-content-type"),
    ],
)
def test_complete_images_are_returned_as_is(body, content_type, kind):
    assert decode_image(body, content_type) == body
    assert wxqr.image_kind(body) == kind


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("image/jpeg", id="labelled-image"),
        pytest.param("application/json; encoding=utf-8", id="labelled-json"),
        pytest.param("text/plain", id="labelled-text"),
    ],
)
def test_error_json_on_an_image_endpoint_raises_the_typed_error(content_type):
    with pytest.raises(wxqr.InvalidRequestError) as info:
        decode_image(ERROR_40159, content_type, endpoint="wxa/getwxacode")
    assert info.value.errcode == 40159
    assert info.value.rid == "617682e0-09059ac5-34a8e2ea"
    assert info.value.endpoint == "wxa/getwxacode"


def test_error_json_with_leading_whitespace_is_still_an_error():
    with pytest.raises(wxqr.InvalidRequestError):
        decode_image(b"\xef\xbb\xbf \r\n" + ERROR_40159)


def test_json_with_errcode_zero_on_an_image_endpoint_is_not_an_image():
    with pytest.raises(wxqr.ResponseDecodeError, match="expected an image"):
        decode_image(b'{"errcode":0,"errmsg":"ok"}')


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(PNG[: len(PNG) // 2], "image/jpeg", id="truncated-png"),
        pytest.param(PNG[:-1], "image/jpeg", id="png-missing-last-byte"),
        pytest.param(JPEG[:-40], "image/jpeg", id="truncated-jpeg"),
        pytest.param(GIF[:-1], "image/gif", id="truncated-gif"),
        pytest.param(b"", "image/jpeg", id="empty"),
        pytest.param(b"\x89PNG", "image/png", id="magic-only"),
        pytest.param(b"not an image at all", "image/jpeg", id="garbage"),
        pytest.param(b"<!DOCTYPE html><html>busy</html>", "text/html", id="html-page"),
        pytest.param(b"<html><body>502</body></html>", "image/jpeg", id="html-labelled-image"),
        pytest.param(PNG, "application/json", id="image-bytes-labelled-json"),
        pytest.param(b'{"errcode": 40159, "errm', "image/jpeg", id="truncated-json"),
        pytest.param(b"[1, 2]", "application/json", id="json-array"),
    ],
)
def test_anything_else_on_an_image_endpoint_is_a_decode_error(body, content_type):
    with pytest.raises(wxqr.ResponseDecodeError):
        decode_image(body, content_type)


def test_html_is_named_in_the_message():
    with pytest.raises(wxqr.ResponseDecodeError, match="HTML page"):
        decode_image(b"<!DOCTYPE html><html>502 Bad Gateway</html>", "text/html")


def test_truncation_is_named_in_the_message():
    with pytest.raises(wxqr.ResponseDecodeError, match="truncated"):
        decode_image(PNG[:100])


# -- JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json", id="json"),
        pytest.param("application/json; encoding=utf-8", id="json-encoding-param"),
        pytest.param("text/plain", id="text-plain"),
        pytest.param("", id="no-content-type"),
    ],
)
def test_json_is_parsed_whatever_its_label(content_type):
    body = (
        b'{"errcode":0,"errmsg":"ok","long_data":"\xe9\x95\xbf","create_time":1,"expire_seconds":2}'
    )
    assert decode_json(body, content_type)["long_data"] == "长"


def test_json_without_errcode_is_a_success():
    assert decode_json(b'{"access_token":"T","expires_in":7200}') == {
        "access_token": "T",
        "expires_in": 7200,
    }


@pytest.mark.parametrize(
    ("errcode", "expected"),
    [
        pytest.param(45009, wxqr.QuotaExceededError, id="45009-int"),
        pytest.param("45009", wxqr.QuotaExceededError, id="45009-as-string"),
        pytest.param(-1, wxqr.SystemBusyError, id="minus-1"),
    ],
)
def test_json_errors_raise_typed_errors(errcode, expected):
    body = json.dumps({"errcode": errcode, "errmsg": "x"}).encode()
    with pytest.raises(expected):
        decode_json(body, "application/json; encoding=utf-8")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<html>gateway</html>", id="html"),
        pytest.param(b'{"errcode":0,', id="truncated"),
        pytest.param(b'{"errcode": true}', id="bool-errcode"),
        pytest.param(b'{"errcode": "busy"}', id="text-errcode"),
        pytest.param(PNG, id="image-where-json-expected"),
    ],
)
def test_malformed_json_answers_are_decode_errors(body):
    with pytest.raises(wxqr.ResponseDecodeError):
        decode_json(body)


# -- HTTP status --------------------------------------------------------------------------------


def test_showqrcode_404_means_ticket_not_found():
    with pytest.raises(wxqr.TicketNotFoundError) as info:
        decode_image(b"", "text/html", status=404, endpoint="cgi-bin/showqrcode")
    assert info.value.status_code == 404


def test_a_404_elsewhere_is_a_plain_http_status_error():
    with pytest.raises(wxqr.HTTPStatusError) as info:
        decode_image(b"", "text/html", status=404, endpoint="wxa/getwxacode")
    assert type(info.value) is wxqr.HTTPStatusError


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_an_http_status_error(status):
    with pytest.raises(wxqr.HTTPStatusError) as info:
        decode_json(b"<html>Bad Gateway</html>", "text/html", status=status)
    assert info.value.status_code == status
    assert type(info.value) is wxqr.HTTPStatusError


def test_wechat_json_behind_a_5xx_keeps_its_errcode():
    with pytest.raises(wxqr.SystemBusyError):
        decode_json(b'{"errcode":-1,"errmsg":"system error"}', status=503)


# -- through a client: error JSON never reaches the caller as bytes ---------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda wx: wx.wxacode.get(path="pages/index/index"), id="getwxacode"),
        pytest.param(lambda wx: wx.wxacode.create_qrcode(path="pages/a"), id="createwxaqrcode"),
        pytest.param(lambda wx: wx.wxacode.get_unlimited(scene="a=1"), id="getwxacodeunlimit"),
        pytest.param(lambda wx: wx.qrcode.show("gQH47joAAAAA"), id="showqrcode"),
    ],
)
async def test_image_endpoints_raise_on_error_json_labelled_as_image(call):
    fake = FakeWeChat()
    bad = httpx.Response(200, content=ERROR_40159, headers={"content-type": "image/jpeg"})
    for path in (
        "wxa/getwxacode",
        "cgi-bin/wxaapp/createwxaqrcode",
        "wxa/getwxacodeunlimit",
        "cgi-bin/showqrcode",
    ):
        fake.reply(path, bad)
    async with fake.client() as wx:
        with pytest.raises(wxqr.InvalidRequestError):
            await call(wx)


@pytest.mark.anyio
async def test_showqrcode_404_through_the_client_is_not_retried():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/showqrcode", httpx.Response(404))
    async with fake.client(retry_backoff=0) as wx:
        with pytest.raises(wxqr.TicketNotFoundError):
            await wx.qrcode.show("expired-ticket")
    assert len(fake.calls("cgi-bin/showqrcode")) == 1
