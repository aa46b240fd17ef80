"""The client's argument checks agree with the sandbox (the emulated WeChat) on every input.

For each generated input the client decides first (``ValidationError`` before any I/O, or it
sends). If it sends, the sandbox's answer to that very request is the other verdict. If it
refuses, the request the client *would* have sent is posted to the sandbox raw. Disagreement
fails the test, except for the known asymmetries below, where the client is deliberately
stricter than WeChat is lenient -- each named with its reason, none hidden:

* ``width`` outside 280..1280: WeChat documents the range but clamps instead of failing (the
  sandbox does the same); the client refuses, so a typo never silently changes the size.
* temporary ``expire_seconds`` over 2592000: WeChat caps it at 30 days; the client refuses
  rather than hand back a ticket with a shorter life than asked for.
* temporary ``scene_id`` in 2**31..2**32-1: WeChat reads it as unsigned 32-bit; the client keeps
  to the documented "32-bit integer" (signed), which every SDK and the docs' examples use.
* ``page=""`` for getwxacodeunlimit: WeChat treats it as "home page"; the client asks for
  ``None`` (omit it) instead of an empty string.
* ``scancode_time`` anywhere in a wxacode ``path``: WeChat refuses it as a query parameter
  (85096); the client refuses the substring anywhere (a cheaper, safe over-approximation).

The other direction -- the client sends what the sandbox refuses -- is never excused.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import wxqr
from wxqr.sandbox import SandboxState, sandbox_client, sandbox_http_client

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
]
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PREFIX = "https://fuzz.example.com/p/"


def fresh_state() -> SandboxState:
    state = SandboxState(seed=5)
    account = state.default_account
    account.jump_per_second = account.jump_rules_limit = 10**6
    return state


async def raw_verdict(state, endpoint, payload):
    async with sandbox_http_client(state) as http:
        answer = await http.post(
            f"/{endpoint}", params={"access_token": state.issue_token()}, json=payload
        )
    if answer.content.startswith(b"\x89PNG"):
        return "ok"
    errcode = answer.json().get("errcode", 0)
    return "ok" if errcode == 0 else errcode


async def verdicts(call, endpoint, payload):
    """(client accepts?, sandbox verdict: "ok" or its errcode)."""
    state = fresh_state()
    client = sandbox_client(state, rate_limits={}, max_retries=0)
    async with client:
        try:
            await call(client)
        except wxqr.ValidationError:
            return False, await raw_verdict(state, endpoint, payload)
        except wxqr.APIError as exc:
            return True, exc.errcode
    return True, "ok"


def judge(client_ok, sandbox, asymmetry=None):
    sandbox_ok = sandbox == "ok"
    if client_ok == sandbox_ok:
        return
    assert not client_ok, f"the client sends a request the sandbox refuses (errcode {sandbox})"
    assert asymmetry, "the client refuses a request the sandbox accepts, with no known reason"


int32ish = st.one_of(
    st.integers(-(2**33), 2**33),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32 - 1, 2**32]),
)
expires = st.one_of(
    st.integers(-5, 3_000_000), st.sampled_from([0, 1, 2_592_000, 2_592_001, 10**12])
)


@FUZZ
@given(scene_id=int32ish, expire=expires)
async def test_qrcode_temporary_scene_id_and_expiry(anyio_backend, scene_id, expire):
    payload = {
        "expire_seconds": expire,
        "action_name": "QR_SCENE",
        "action_info": {"scene": {"scene_id": scene_id}},
    }
    client_ok, sandbox = await verdicts(
        lambda c: c.qrcode.create_temporary(scene_id=scene_id, expire_seconds=expire),
        "cgi-bin/qrcode/create",
        payload,
    )
    asymmetry = (2**31 <= scene_id < 2**32) or expire > 2_592_000
    judge(client_ok, sandbox, asymmetry)


@FUZZ
@given(scene_id=int32ish, scene_str=st.none() | st.text(max_size=70))
async def test_qrcode_permanent_scene(anyio_backend, scene_id, scene_str):
    scene = {"scene_id": scene_id} if scene_str is None else {"scene_str": scene_str}
    action = "QR_LIMIT_SCENE" if scene_str is None else "QR_LIMIT_STR_SCENE"
    client_ok, sandbox = await verdicts(
        lambda c: c.qrcode.create_permanent(**scene),
        "cgi-bin/qrcode/create",
        {"action_name": action, "action_info": {"scene": scene}},
    )
    judge(client_ok, sandbox)


@FUZZ
@given(
    unit=st.characters(exclude_categories=["Cs"]),
    repeat=st.integers(0, 4200),
    expire=expires,
)
@example(unit="a", repeat=4096, expire=2_592_000)
@example(unit="a", repeat=4097, expire=1)
@example(unit="é", repeat=2048, expire=1)
@example(unit="é", repeat=2049, expire=1)
async def test_shorten_long_data_and_expiry(anyio_backend, unit, repeat, expire):
    data = unit * repeat
    client_ok, sandbox = await verdicts(
        lambda c: c.shorten.gen(data, expire_seconds=expire),
        "cgi-bin/shorten/gen",
        {"long_data": data, "expire_seconds": expire},
    )
    judge(client_ok, sandbox)


scene_chars = st.sampled_from("abcXYZ019!#$&'()*+,/:;=?@-._~ %é\u4e2d\t\"<>[]^`{|}\\")


@FUZZ
@given(
    scene=st.text(scene_chars, max_size=40),
    page=st.none()
    | st.sampled_from(["", "/pages/a", "pages/a?x=1", "pages/a#b"])
    | st.text(max_size=20),
    env=st.sampled_from(["release", "trial", "develop", "Release", "", "prod"]),
    width=st.integers(0, 2000),
)
async def test_get_unlimited_scene_page_env_width(anyio_backend, scene, page, env, width):
    payload = {"scene": scene, "check_path": False, "width": width, "auto_color": False}
    payload |= {"is_hyaline": False, "env_version": env}
    if page is not None:
        payload["page"] = page
    client_ok, sandbox = await verdicts(
        lambda c: c.wxacode.get_unlimited(
            scene=scene, page=page, check_path=False, env_version=env, width=width
        ),
        "wxa/getwxacodeunlimit",
        payload,
    )
    asymmetry = not 280 <= width <= 1280 or page == ""
    judge(client_ok, sandbox, asymmetry)


paths = st.one_of(
    st.text(max_size=40),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "/"]), st.integers(120, 1030)),
    st.sampled_from(["pages/a?scancode_time=1", "pages/scancode_time", "pages/a?x=scancode_time"]),
)


@FUZZ
@given(path=paths, width=st.integers(200, 1400), env=st.sampled_from(["release", "beta"]))
async def test_getwxacode_path_width_env(anyio_backend, path, width, env):
    payload = {"path": path, "width": width, "auto_color": False, "is_hyaline": False}
    payload["env_version"] = env
    client_ok, sandbox = await verdicts(
        lambda c: c.wxacode.get(path=path, width=width, env_version=env),
        "wxa/getwxacode",
        payload,
    )
    judge(client_ok, sandbox, not 280 <= width <= 1280 or "scancode_time" in path)


@FUZZ
@given(path=paths, width=st.integers(200, 1400))
async def test_createwxaqrcode_path_width(anyio_backend, path, width):
    client_ok, sandbox = await verdicts(
        lambda c: c.wxacode.create_qrcode(path=path, width=width),
        "cgi-bin/wxaapp/createwxaqrcode",
        {"path": path, "width": width},
    )
    judge(client_ok, sandbox, not 280 <= width <= 1280 or "scancode_time" in path)


@FUZZ
@given(
    prefix=st.sampled_from([PREFIX, "http://fuzz.example.com/", "https://", "ftp://x.com/"]),
    count=st.integers(0, 8),
    open_version=st.integers(-1, 4),
    permit_sub_rule=st.integers(-1, 3),
)
@example(prefix="http://", count=0, open_version=1, permit_sub_rule=1)
async def test_qrcode_jump_add_debug_urls_and_enums(
    anyio_backend, prefix, count, open_version, permit_sub_rule
):
    urls = [f"{prefix}{i}" for i in range(count)]
    payload = {
        "prefix": prefix,
        "path": "pages/index/index",
        "open_version": open_version,
        "permit_sub_rule": permit_sub_rule,
        "debug_url": urls,
        "is_edit": 0,
    }
    client_ok, sandbox = await verdicts(
        lambda c: c.qrcode_jump.add(
            prefix=prefix,
            path="pages/index/index",
            open_version=open_version,
            permit_sub_rule=permit_sub_rule,
            debug_url=urls,
        ),
        "cgi-bin/wxopen/qrcodejumpadd",
        payload,
    )
    judge(client_ok, sandbox)
