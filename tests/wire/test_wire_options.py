"""The wire options of ``wxqr.Client`` and the answers every wire must still decode."""

from __future__ import annotations

import httpx
import pytest
from hostile_server import HostileServer

import wxqr

WIRES = [
    pytest.param("asyncio", "aiohttp", id="aiohttp-asyncio"),
    pytest.param("asyncio", "httpx", id="httpx-asyncio"),
    pytest.param("trio", "httpx", id="httpx-trio"),
]


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        pytest.param({"wire": "requests"}, "wire", id="unknown-wire"),
        pytest.param({"wire": None}, "wire", id="wire-none"),
        pytest.param({"deadline": 0}, "deadline", id="deadline-zero"),
        pytest.param({"deadline": float("inf")}, "deadline", id="deadline-inf"),
        pytest.param({"deadline": float("nan")}, "deadline", id="deadline-nan"),
        pytest.param({"deadline": True}, "deadline", id="deadline-bool"),
        pytest.param({"max_response_bytes": 100}, "max_response_bytes", id="cap-tiny"),
        pytest.param({"max_response_bytes": 1.5e6}, "max_response_bytes", id="cap-float"),
    ],
)
def test_wire_options_are_validated(options, argument):
    with pytest.raises(wxqr.ValidationError) as caught:
        wxqr.Client("wx1", "secret", **options)
    assert caught.value.argument == argument


def test_the_aiohttp_wire_cannot_take_a_callers_http_client():
    http = httpx.AsyncClient()
    with pytest.raises(wxqr.ValidationError, match="wire"):
        wxqr.Client("wx1", "secret", wire="aiohttp", http_client=http)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_the_aiohttp_wire_under_trio_is_refused_before_any_request(anyio_backend):
    with HostileServer() as server:
        async with wxqr.Client("wx1", "secret", api_base_url=server.base_url, wire="aiohttp") as wx:
            with pytest.raises(wxqr.ValidationError, match="asyncio"):
                await wx.access_token()
    assert not server.requests


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_compressed_answers_are_decoded_on_every_wire(anyio_backend, wire, encoding):
    with HostileServer(f"{encoding}-json") as server:
        async with wxqr.Client(
            "wx1", "secret", api_base_url=server.base_url, wire=wire, rate_limits={}
        ) as wx:
            ticket = await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
    assert ticket.ticket == "gQH47joAAAAAAAAAASxodHRwOi8v"


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_an_encoding_never_asked_for_is_a_decode_error(anyio_backend, wire):
    with HostileServer("br-json") as server:
        async with wxqr.Client(
            "wx1", "secret", api_base_url=server.base_url, wire=wire, max_retries=0
        ) as wx:
            with pytest.raises(wxqr.ResponseDecodeError, match="Content-Encoding"):
                await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
