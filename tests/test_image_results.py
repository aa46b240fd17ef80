"""Image results are ``wxqr.Image``: bytes, plus the real kind and WeChat's ``Num-Used``."""

from __future__ import annotations

import io
import pickle

import httpx
import pytest
from mockwechat import PNG, FakeWeChat, error

import wxqr
from wxqr._decoder import decode

pytestmark = pytest.mark.anyio

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * 8 + b"\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


def image_answer(body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "image/jpeg", **headers})


@pytest.mark.parametrize(
    ("call", "path"),
    [
        pytest.param(lambda wx: wx.wxacode.get(path="pages/index/index"), "wxa/getwxacode", id="A"),
        pytest.param(
            lambda wx: wx.wxacode.create_qrcode(path="pages/index/index"),
            "cgi-bin/wxaapp/createwxaqrcode",
            id="C",
        ),
    ],
)
async def test_num_used_is_read_from_the_header(call, path):
    fake = FakeWeChat()
    fake.reply(path, image_answer(PNG, **{"Num-Used": "41"}), image_answer(PNG))
    async with fake.client() as wx:
        first = await call(wx)
        second = await call(wx)
    assert isinstance(first, wxqr.Image)
    assert first.num_used == 41
    assert second.num_used is None  # no header, no guess
    assert first == PNG  # still the very bytes
    assert isinstance(first, bytes)


async def test_every_image_method_returns_an_image():
    fake = FakeWeChat()
    async with fake.client() as wx:
        ticket = wxqr.QrTicket(ticket="gQH47joAAAAAAAAAASxodHRw", url="http://weixin.qq.com/q/x")
        images = [
            await wx.qrcode.show(ticket),
            await wx.wxacode.get(path="pages/index/index"),
            await wx.wxacode.create_qrcode(path="pages/index/index"),
            await wx.wxacode.get_unlimited(scene="a=1"),
        ]
    for image in images:
        assert type(image) is wxqr.Image
        assert image.kind == "png"
        assert image.content_type == "image/png"  # WeChat's label said image/jpeg
        assert image.num_used is None


@pytest.mark.parametrize(
    ("body", "kind", "content_type"),
    [
        pytest.param(PNG, "png", "image/png", id="png"),
        pytest.param(JPEG, "jpeg", "image/jpeg", id="jpeg"),
        pytest.param(GIF, "gif", "image/gif", id="gif"),
    ],
)
def test_kind_and_content_type_come_from_the_bytes(body, kind, content_type):
    image = decode(200, {"content-type": "image/jpeg"}, body, expect="image", endpoint="wxa/x")
    assert image.kind == kind == wxqr.image_kind(body)
    assert image.content_type == content_type


@pytest.mark.parametrize(
    ("headers", "num_used"),
    [
        pytest.param(httpx.Headers({"Num-Used": "100000"}), 100000, id="httpx-headers"),
        pytest.param({"num-used": "7"}, 7, id="lower-case-dict"),
        pytest.param({"Num-Used": " 7 "}, 7, id="wechat-case-dict"),
        pytest.param({"num-used": "-1"}, None, id="negative"),
        pytest.param({"num-used": "12a"}, None, id="not-a-number"),
        pytest.param({"num-used": "٣"}, None, id="non-ascii-digit"),
        pytest.param({"num-used": "9" * 40}, None, id="absurd"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_num_used_parsing_is_strict(headers, num_used):
    image = decode(200, headers, PNG, expect="image", endpoint="wxa/getwxacode")
    assert image.num_used == num_used


def test_an_image_behaves_like_the_bytes_it_is(tmp_path):
    image = wxqr.Image(PNG, kind="png", num_used=3)
    assert image == PNG
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    assert hash(image) == hash(PNG)
    assert bytes(image) == PNG
    assert type(bytes(image)) is bytes
    (tmp_path / "code.png").write_bytes(image)
    assert (tmp_path / "code.png").read_bytes() == PNG
    assert io.BytesIO(image).read() == PNG
    copy = pickle.loads(pickle.dumps(image))
    assert (copy, copy.kind, copy.num_used) == (PNG, "png", 3)
    assert "num_used=3" in repr(image)
    assert len(repr(image)) < 80  # never the whole image in a log line


async def test_an_error_answer_is_never_an_image_even_with_num_used():
    fake = FakeWeChat()
    fake.reply(
        "wxa/getwxacode",
        httpx.Response(
            200,
            json=error(45029),
            headers={"content-type": "image/jpeg", "Num-Used": "100000"},
        ),
    )
    async with fake.client() as wx:
        with pytest.raises(wxqr.QuotaExceededError):
            await wx.wxacode.get(path="pages/index/index")
