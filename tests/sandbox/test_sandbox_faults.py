"""Fault injection: every kind, once / N times / with a probability, reproducible with a seed."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from sandbox_helpers import T0, decode_qr, errcode_of

from wxqr.errors import CATALOGUE
from wxqr.sandbox import (
    FaultKind,
    SandboxState,
    VirtualClock,
    parse_fault_spec,
    sandbox_http_client,
)

pytestmark = pytest.mark.anyio

UNLIMIT = "/wxa/getwxacodeunlimit"


async def unlimited(http, token):
    return await http.post(UNLIMIT, params={"access_token": token}, json={"scene": "x"})


async def test_errcode_fault_fires_n_times_with_the_catalogue_errmsg(http, state, token):
    fault = state.faults.add("wxa/getwxacodeunlimit", "errcode", errcode=45011, times=2)
    for _ in range(2):
        response = await unlimited(http, token)
        assert errcode_of(response) == 45011
        assert response.json()["errmsg"].startswith(CATALOGUE[45011].errmsg + " rid: ")
    assert (await unlimited(http, token)).headers["content-type"] == "image/jpeg"
    assert fault.fired == 2
    assert state.calls["wxa/getwxacodeunlimit"] == 3
    assert [r.fault for r in state.requests] == ["errcode", "errcode", None]
    assert [r.errcode for r in state.requests] == [45011, 45011, None]


async def test_faults_only_hit_matching_endpoints(http, state, token):
    state.faults.add("cgi-bin/*", "http_status", status=503)
    assert (await unlimited(http, token)).status_code == 200
    shown = await http.get("/cgi-bin/showqrcode", params={"ticket": "x"})
    assert shown.status_code == 503
    assert "text/html" in shown.headers["content-type"]


async def test_html_fault(http, state, token):
    state.faults.add("wxa/*", FaultKind.HTML)
    response = await unlimited(http, token)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lstrip().startswith("<!DOCTYPE html>")


async def test_truncated_image_is_the_first_half(http, state, token):
    whole = (await unlimited(http, token)).content
    state.faults.add("wxa/getwxacodeunlimit", "truncated_image")
    cut = (await unlimited(http, token)).content
    assert cut == whole[: len(whole) // 2]


async def test_lying_content_types(http, state, token):
    state.faults.add("wxa/getwxacodeunlimit", "lying_content_type")
    image = await unlimited(http, token)
    assert image.headers["content-type"] == "text/plain"
    assert image.content.startswith(b"\x89PNG")
    state.faults.add("wxa/getwxacodeunlimit", "lying_content_type", errcode=-1)
    error = await unlimited(http, token)
    assert error.headers["content-type"] == "image/jpeg"
    assert error.json()["errcode"] == -1


async def test_drop_in_process_raises_httpx_connection_error(http, state, token):
    state.faults.add("wxa/getwxacodeunlimit", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await unlimited(http, token)
    assert state.requests[-1].status is None
    assert (await unlimited(http, token)).status_code == 200


async def test_processed_faults_apply_side_effects_first(http, state, token):
    state.faults.add("cgi-bin/shorten/gen", "drop", processed=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(
            "/cgi-bin/shorten/gen", params={"access_token": token}, json={"long_data": "d"}
        )
    assert [k.long_data for k in state.short_keys.values()] == ["d"]
    state.faults.add("cgi-bin/shorten/gen", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(
            "/cgi-bin/shorten/gen", params={"access_token": token}, json={"long_data": "e"}
        )
    assert len(state.short_keys) == 1


async def test_latency_delays_for_real_and_max_in_flight_is_counted(http, state, token):
    state.faults.add("wxa/*", "latency", seconds=0.2, times=5)
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(unlimited, http, token)
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1.0  # concurrent, not serialised
    assert state.max_in_flight["wxa/getwxacodeunlimit"] == 5
    assert state.in_flight["wxa/getwxacodeunlimit"] == 0


async def fault_pattern(seed):
    state = SandboxState(seed=seed, clock=VirtualClock(T0, frozen=True))
    state.faults.add("*", "errcode", errcode=-1, probability=0.5)
    token = state.issue_token()
    async with sandbox_http_client(state) as http:
        for _ in range(40):
            await unlimited(http, token)
    return [r.errcode for r in state.requests]


async def test_probability_is_reproducible_with_a_seed():
    first, second, other = await fault_pattern(3), await fault_pattern(3), await fault_pattern(4)
    assert first == second
    assert first != other
    assert 8 < first.count(-1) < 32  # about half of 40


async def test_probability_with_times_caps_the_firings(http, state, token):
    fault = state.faults.add("wxa/*", "errcode", errcode=-1, probability=0.9, times=2)
    for _ in range(10):
        await unlimited(http, token)
    assert fault.fired == 2
    assert fault.times == 0


async def test_images_under_faults_still_decode_when_unaffected(http, state, token):
    state.faults.add("cgi-bin/token", "drop")
    response = await unlimited(http, token)
    assert decode_qr(response.content) == "pages/index/index?scene=x"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "wxa/getwxacodeunlimit:errcode:45011@3",
            ("wxa/getwxacodeunlimit", FaultKind.ERRCODE, {"errcode": 45011, "times": 3}),
        ),
        ("*:latency:0.5%0.1", ("*", FaultKind.LATENCY, {"seconds": 0.5, "probability": 0.1})),
        ("cgi-bin/token:drop!", ("cgi-bin/token", FaultKind.DROP, {"processed": True})),
        (
            "cgi-bin/qrcode/create:http_status:503",
            ("cgi-bin/qrcode/create", FaultKind.HTTP_STATUS, {"status": 503}),
        ),
    ],
)
def test_parse_fault_spec(spec, expected):
    assert parse_fault_spec(spec) == expected


@pytest.mark.parametrize("spec", ["nokind", "x:explode", "x:drop:1", "x:errcode:abc"])
def test_bad_fault_specs(spec):
    with pytest.raises(ValueError):
        parse_fault_spec(spec)


def test_add_validates_arguments(state):
    with pytest.raises(ValueError, match="errcode"):
        state.faults.add("*", "errcode")
    with pytest.raises(ValueError, match="probability"):
        state.faults.add("*", "drop", probability=0)
