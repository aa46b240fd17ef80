"""Argument checks at their exact limits, and URLs without a host.

Companion of ``tests/test_validation.py``: every limit here is tested on both sides of its
boundary, and the error names the argument and the allowed range.
"""

from __future__ import annotations

import pytest

import wxqr
from wxqr import _validate as check


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://", id="https-no-host"),
        pytest.param("http://", id="http-no-host"),
        pytest.param("https:///qr/", id="empty-host-with-path"),
        pytest.param("https://?a=1", id="query-no-host"),
        pytest.param("https://:443/", id="port-no-host"),
        pytest.param("http://[::1", id="unclosed-ipv6"),
        pytest.param("ftp://example.com/", id="ftp"),
        pytest.param("example.com/qr", id="no-scheme"),
    ],
)
def test_a_url_without_scheme_or_host_is_refused(url):
    with pytest.raises(wxqr.ValidationError) as info:
        check.http_url("prefix", url)
    assert info.value.argument == "prefix"
    assert str(info.value) == f"prefix: must be an http:// or https:// URL, got {url!r:.60}"


@pytest.mark.parametrize(
    "url", ["https://example.com", "http://a.b/qr/?x=1", "https://[::1]:8443/q", "https://a"]
)
def test_a_url_with_a_host_is_accepted(url):
    assert check.http_url("prefix", url) == url


def test_a_url_over_2048_characters_is_refused():
    url = "https://example.com/" + "a" * (2048 - 20)
    assert check.http_url("prefix", url) == url
    with pytest.raises(wxqr.ValidationError, match=r"1\.\.2048 chars long, got 2049"):
        check.http_url("prefix", url + "a")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_jump_rule_prefix_without_host_fails_before_any_request(anyio_backend):
    from mockwechat import FakeWeChat

    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await wx.qrcode_jump.publish("https://")
    assert info.value.argument == "prefix"
    assert fake.requests == []


# -- exact boundaries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [(-(2**31), True), (-(2**31) - 1, False), (2**31 - 1, True), (2**31, False), (1, True)],
)
def test_temporary_scene_id_is_a_32_bit_integer(value, ok):
    if ok:
        assert check.temporary_scene_id(value) == value
    else:
        with pytest.raises(wxqr.ValidationError, match=r"-2147483648\.\.2147483647"):
            check.temporary_scene_id(value)


def test_temporary_scene_id_zero_is_refused_with_the_range():
    with pytest.raises(wxqr.ValidationError) as info:
        check.temporary_scene_id(0)
    assert str(info.value) == (
        "scene_id: must be a non-zero 32-bit integer (-2147483648..2147483647, not 0)"
    )


@pytest.mark.parametrize(
    ("func", "low", "high", "name"),
    [
        pytest.param(check.permanent_scene_id, 1, 100_000, "scene_id", id="permanent-scene-id"),
        pytest.param(check.expire_seconds, 1, 2_592_000, "expire_seconds", id="expire-seconds"),
        pytest.param(check.width, 280, 1280, "width", id="width"),
    ],
)
def test_integer_limits_on_both_sides(func, low, high, name):
    assert func(low) == low
    assert func(high) == high
    for bad in (low - 1, high + 1):
        with pytest.raises(wxqr.ValidationError) as info:
            func(bad)
        assert str(info.value) == f"{name}: must be in {low}..{high}, got {bad}"
    for bad in (True, 1.0, "1", None):
        with pytest.raises(wxqr.ValidationError) as info:
            func(bad)
        assert str(info.value) == f"{name}: must be an integer in {low}..{high}, got {bad!r}"


@pytest.mark.parametrize(
    ("func", "limit", "name", "unit"),
    [
        pytest.param(check.scene_str, 64, "scene_str", "chars", id="scene-str"),
        pytest.param(check.unlimited_scene, 32, "scene", "chars", id="unlimited-scene"),
        pytest.param(check.short_key, 64, "short_key", "chars", id="short-key"),
    ],
)
def test_text_limits_on_both_sides(func, limit, name, unit):
    assert func("a" * limit) == "a" * limit
    assert func("a") == "a"
    with pytest.raises(wxqr.ValidationError) as info:
        func("a" * (limit + 1))
    assert str(info.value) == f"{name}: must be 1..{limit} {unit} long, got {limit + 1} {unit}"
    with pytest.raises(wxqr.ValidationError) as info:
        func("")
    assert str(info.value) == f"{name}: must be 1..{limit} {unit} long, got 0 {unit}"
    with pytest.raises(wxqr.ValidationError) as info:
        func(7)
    assert str(info.value) == f"{name}: must be a string, got int"


def test_byte_limits_count_utf8_bytes():
    assert check.text("path", "长" * 42 + "a" * 2, max_len=128, unit="bytes")
    with pytest.raises(wxqr.ValidationError) as info:
        check.text("path", "长" * 43, max_len=128, unit="bytes")
    assert str(info.value) == "path: must be 1..128 bytes long, got 129 bytes"
    assert check.text("t", "", min_len=0, max_len=1) == ""


@pytest.mark.parametrize("value", ["release", "trial", "develop"])
def test_env_version_accepts_the_three_documented_values(value):
    assert check.env_version(value) == value


@pytest.mark.parametrize("value", ["Release", "", None, True, 1])
def test_env_version_refuses_anything_else_listing_the_choices(value):
    with pytest.raises(wxqr.ValidationError) as info:
        check.env_version(value)
    assert str(info.value) == (
        f"env_version: must be one of 'release', 'trial', 'develop', got {value!r}"
    )


@pytest.mark.parametrize("value", [0, 1, "true", None])
def test_booleans_must_be_real_booleans(value):
    with pytest.raises(wxqr.ValidationError) as info:
        check.boolean("is_hyaline", value)
    assert str(info.value) == f"is_hyaline: must be True or False, got {value!r}"
    assert check.boolean("is_hyaline", False) is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((0, 128, 255), {"r": 0, "g": 128, "b": 255}),
        ([1, 2, 3], {"r": 1, "g": 2, "b": 3}),
        ({"r": 255, "g": 0, "b": 9}, {"r": 255, "g": 0, "b": 9}),
    ],
)
def test_line_color_forms(value, expected):
    assert check.line_color(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ((0, 0, 256), "line_color.b: must be in 0..255, got 256"),
        ((-1, 0, 0), "line_color.r: must be in 0..255, got -1"),
        ((0, 1.5, 0), "line_color.g: must be an integer in 0..255, got 1.5"),
        ((0, 0), "line_color: must be an (r, g, b) tuple of integers 0..255"),
        ("#fff", "line_color: must be an (r, g, b) tuple of integers 0..255"),
        ({"r": 1, "g": 2}, "line_color: must have exactly the keys 'r', 'g', 'b'"),
    ],
)
def test_line_color_errors(value, message):
    with pytest.raises(wxqr.ValidationError) as info:
        check.line_color(value)
    assert str(info.value) == message


def test_debug_urls_limit_is_five():
    urls = [f"https://a.example/{i}" for i in range(5)]
    assert check.debug_urls(tuple(urls)) == urls
    with pytest.raises(wxqr.ValidationError) as info:
        check.debug_urls([*urls, "https://a.example/5"])
    assert str(info.value) == "debug_url: at most 5 URLs, got 6"
    for bad in ("https://a.example/", 5):
        with pytest.raises(wxqr.ValidationError, match="must be a list of URLs"):
            check.debug_urls(bad)
    with pytest.raises(wxqr.ValidationError, match=r"debug_url: must be 1\.\.2048 chars"):
        check.debug_urls([""])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/pages/index", "page: must not start with '/' (e.g. 'pages/index/index')"),
        ("pages/index?a=1", "page: must not contain a query ('?'); put parameters in scene"),
    ],
)
def test_page_errors(value, message):
    with pytest.raises(wxqr.ValidationError) as info:
        check.page(value)
    assert str(info.value) == message
    assert check.page("pages/index/index") == "pages/index/index"


def test_unlimited_scene_names_the_bad_characters():
    with pytest.raises(wxqr.ValidationError) as info:
        check.unlimited_scene("a b%c%")
    assert str(info.value) == (
        "scene: may only contain 0-9 a-z A-Z and !#$&'()*+,/:;=?@-._~ "
        "(no '%', spaces or non-ASCII), found ' %'"
    )
    allowed = "0aZ!#$&'()*+,/:;=?@-._~"
    assert check.unlimited_scene(allowed) == allowed


def test_scancode_time_is_reserved():
    check.no_scancode_time("scene", "a=1")
    with pytest.raises(wxqr.ValidationError) as info:
        check.no_scancode_time("scene", "scancode_time=1")
    assert str(info.value) == "scene: must not contain 'scancode_time' (reserved by WeChat)"


def test_exactly_one_scene():
    check.exactly_one_scene(1, None)
    check.exactly_one_scene(None, "s")
    for args in ((None, None), (1, "s")):
        with pytest.raises(wxqr.ValidationError) as info:
            check.exactly_one_scene(*args)
        assert info.value.argument == "scene_id/scene_str"


def test_short_key_must_be_base62():
    assert check.short_key("iTqRJFSEqk9RvPk") == "iTqRJFSEqk9RvPk"
    with pytest.raises(wxqr.ValidationError) as info:
        check.short_key("abc-def")
    assert str(info.value) == "short_key: must be base62 (0-9 a-z A-Z)"


def test_a_character_limit_counts_characters_not_bytes():
    assert check.scene_str("长" * 64) == "长" * 64  # 64 characters, 192 UTF-8 bytes


def test_the_scene_choice_and_debug_url_messages():
    with pytest.raises(wxqr.ValidationError) as info:
        check.exactly_one_scene(None, None)
    assert str(info.value) == (
        "scene_id/scene_str: pass exactly one of scene_id (int) or scene_str (str)"
    )
    with pytest.raises(wxqr.ValidationError) as info:
        check.debug_urls("https://a.example/")
    assert str(info.value) == "debug_url: must be a list of URLs"


# -- text that cannot be sent, timeouts under a second -------------------------------------------


@pytest.mark.parametrize(
    ("func", "name"),
    [
        pytest.param(check.scene_str, "scene_str", id="scene-str"),
        pytest.param(check.unlimited_scene, "scene", id="unlimited-scene"),
        pytest.param(lambda value: check.link_query("query", value), "query", id="link-query"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_the_argument_and_where_it_is(func, name):
    with pytest.raises(wxqr.ValidationError) as info:
        func("ab\ud800c")
    assert info.value.argument == name
    assert str(info.value) == (
        f"{name}: must be valid Unicode text: a lone surrogate '\\ud800' at index 2 cannot be "
        "encoded as UTF-8"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_lone_surrogate_in_a_scene_fails_before_any_request(anyio_backend):
    from mockwechat import FakeWeChat

    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await wx.qrcode.create_temporary(expire_seconds=60, scene_str="\udfff")
    assert str(info.value) == (
        "scene_str: must be valid Unicode text: a lone surrogate '\\udfff' at index 0 cannot be "
        "encoded as UTF-8"
    )
    assert fake.requests == []


@pytest.mark.parametrize("value", [0.5, 0.001, 1, 2.5])
def test_any_positive_timeout_is_accepted_also_under_a_second(value):
    assert check.timeout(value) == value
    assert wxqr.Client("wx1a2b3c4d5e6f7a8b", "secret", timeout=value) is not None


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_half_second_per_call_timeout_reaches_the_request(anyio_backend):
    from mockwechat import FakeWeChat

    fake = FakeWeChat()
    fake.reply("wxa/generatescheme", {"errcode": 0, "errmsg": "ok", "openlink": "weixin://x"})
    async with fake.client() as wx:
        await wx.links.generate_scheme(timeout=0.5)
    [request] = fake.calls("wxa/generatescheme")
    assert request.extensions["timeout"]["read"] == 0.5
