"""The three wxacode endpoints: real QR images, PNG labelled image/jpeg, validation, quotas."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sandbox_helpers import decode_qr, errcode_of

pytestmark = pytest.mark.anyio

A, B, C = "/wxa/getwxacode", "/wxa/getwxacodeunlimit", "/cgi-bin/wxaapp/createwxaqrcode"


async def call(http, token, path, body=None, **kwargs):
    return await http.post(path, params={"access_token": token}, json=body, **kwargs)


@pytest.mark.parametrize("path", [A, C])
async def test_path_codes_encode_the_path(http, token, path):
    response = await call(http, token, path, {"path": "pages/detail/detail?id=7", "width": 430})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"\x89PNG")
    assert decode_qr(response.content) == "pages/detail/detail?id=7"


async def test_unlimited_code_encodes_page_and_scene(http, token):
    response = await call(http, token, B, {"scene": "a=1&b=c", "page": "pages/user/user"})
    assert response.headers["content-type"] == "image/jpeg"
    assert decode_qr(response.content) == "pages/user/user?scene=a=1&b=c"
    home = await call(http, token, B, {"scene": 42})
    assert decode_qr(home.content) == "pages/index/index?scene=42"


@pytest.mark.parametrize(
    ("width", "expected"), [(280, 280), (430, 430), (1280, 1280), (5000, 1280)]
)
async def test_width_is_honoured_approximately_and_clamped(http, token, width, expected):
    response = await call(http, token, A, {"path": "pages/index/index", "width": str(width)})
    size = Image.open(io.BytesIO(response.content)).size
    assert size[0] == size[1]
    assert abs(size[0] - expected) <= expected * 0.1


async def test_is_hyaline_gives_a_transparent_png_and_line_color_paints_the_modules(http, token):
    body = {
        "scene": "x",
        "is_hyaline": True,
        "line_color": {"r": "200", "g": 0, "b": "16"},
    }
    png = (await call(http, token, B, body)).content
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    colours = {colour for _, colour in image.getcolors(maxcolors=16)}
    assert (200, 0, 16, 255) in colours
    assert all(alpha == 0 for *_, alpha in colours - {(200, 0, 16, 255)})
    assert image.getpixel((0, 0))[3] == 0
    assert decode_qr(png) == "pages/index/index?scene=x"
    opaque = (await call(http, token, B, {"scene": "x"})).content
    assert Image.open(io.BytesIO(opaque)).convert("RGBA").getpixel((0, 0)) == (255, 255, 255, 255)


@pytest.mark.parametrize(
    ("path", "body", "errcode"),
    [
        pytest.param(C, {"path": ""}, 40159, id="C-40159-empty"),
        pytest.param(C, {"path": "p" * 129}, 40159, id="C-40159-129-bytes"),
        pytest.param(A, {"path": "p" * 1025}, 40159, id="A-40159-1025-chars"),
        pytest.param(A, {}, 40159, id="A-40159-missing"),
        pytest.param(A, {"path": "p", "env_version": "beta"}, 40097, id="A-40097-env"),
        pytest.param(A, {"path": "p?scancode_time=1"}, 85096, id="A-85096-in-path"),
        pytest.param(C, {"path": "p", "scancode_time": 1}, 85096, id="C-85096-field"),
        pytest.param(B, {"page": "pages/index/index"}, 40169, id="B-40169-missing"),
        pytest.param(B, {"scene": ""}, 40169, id="B-40169-empty"),
        pytest.param(B, {"scene": "s" * 33}, 40169, id="B-40169-33"),
        pytest.param(B, {"scene": "中文"}, 40129, id="B-40129-chinese"),
        pytest.param(B, {"scene": "a%20b"}, 40129, id="B-40129-percent"),
        pytest.param(B, {"scene": "x", "page": "/pages/index/index"}, 41030, id="B-41030-slash"),
        pytest.param(B, {"scene": "x", "page": "pages/index/index?a=1"}, 41030, id="B-41030-q"),
        pytest.param(B, {"scene": "x", "page": "pages/nope/nope"}, 41030, id="B-41030-unknown"),
        pytest.param(B, {"scene": "x", "env_version": "prod"}, 40097, id="B-40097-env"),
        pytest.param(B, {"scene": "x", "scancode_time": 5}, 85096, id="B-85096"),
        pytest.param(
            B, {"scene": "x", "line_color": {"r": 300, "g": 0, "b": 0}}, 40097, id="B-40097-colour"
        ),
    ],
)
async def test_validation_errors_are_json_labelled_as_wechat_does(http, token, path, body, errcode):
    assert errcode_of(await call(http, token, path, body)) == errcode


@pytest.mark.parametrize(("path", "errcode"), [(A, 40159), (C, 40159), (B, 40169)])
async def test_a_body_that_is_not_json_gets_the_endpoint_code(http, token, path, errcode):
    response = await http.post(path, params={"access_token": token}, content=b"path=x")
    assert errcode_of(response) == errcode


async def test_check_path_false_allows_unreleased_pages(http, state, token):
    body = {"scene": "x", "page": "pages/new/new", "check_path": False, "env_version": "develop"}
    assert decode_qr((await call(http, token, B, body)).content) == "pages/new/new?scene=x"
    state.default_account.released = False
    assert errcode_of(await call(http, token, B, {"scene": "x"})) == 41030


async def test_a_and_c_share_a_lifetime_cap_and_num_used_counts(http, state, token):
    state.default_account.wxacode_limit = 3
    first = await call(http, token, A, {"path": "p"})
    assert first.headers["num-used"] == "1"
    await call(http, token, C, {"path": "p"})
    assert (await call(http, token, A, {"path": "p"})).headers["num-used"] == "3"
    refused = await call(http, token, C, {"path": "p"})
    assert errcode_of(refused) == 45029
    refused = await call(http, token, A, {"path": "p"})
    assert errcode_of(refused) == 45029
    assert refused.headers["num-used"] == "3"
    assert (await call(http, token, B, {"scene": "unlimited"})).status_code == 200


@pytest.mark.parametrize("errcode", [45011, 45009])
async def test_unlimited_is_rate_limited_per_minute(http, state, token, errcode):
    account = state.default_account
    account.unlimited_per_minute, account.unlimited_rate_errcode = 3, errcode
    state.clock.set((state.clock.now() // 60) * 60)
    for _ in range(3):
        assert (await call(http, token, B, {"scene": "x"})).status_code == 200
    assert errcode_of(await call(http, token, B, {"scene": "x"})) == errcode
    state.clock.advance(60)
    assert (await call(http, token, B, {"scene": "x"})).headers["content-type"] == "image/jpeg"
