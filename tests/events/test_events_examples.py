"""End to end: the sandbox creates a code through an example app, scans it, and the example's
receiver (mounted at /wechat) sees the right QrScan — FastAPI in-process, aiohttp on a socket."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

import wxqr
from wxqr import events
from wxqr.sandbox import DEFAULT_APPID, SandboxState, sandbox_client, sandbox_http_client

pytest.importorskip("fastapi")
pytest.importorskip("aiohttp")
pytest.importorskip("cryptography")

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKEN = "example-push-token"
KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # FastAPI and aiohttp apps are asyncio apps


def load(name: str):
    spec = importlib.util.spec_from_file_location(
        f"wxqr_events_example_{name}", EXAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mode", ["plain", "safe"])
@pytest.mark.parametrize("framework", ["fastapi", "aiohttp"])
async def test_a_scan_of_a_code_the_example_made_reaches_its_handler(
    framework, mode, monkeypatch, capsys
):
    monkeypatch.setenv("WXQR_PUSH_TOKEN", TOKEN)
    monkeypatch.setenv("WXQR_APPID", DEFAULT_APPID)
    if mode == "safe":
        monkeypatch.setenv("WXQR_PUSH_AES_KEY", KEY)
    else:
        monkeypatch.delenv("WXQR_PUSH_AES_KEY", raising=False)
    state = SandboxState(seed=11)
    backend = sandbox_http_client(state)

    def client_factory() -> wxqr.Client:
        return sandbox_client(state, http_client=backend, max_retries=0)

    example = load(f"{framework}_app")
    receiver = example.receiver_from_env()
    assert receiver is not None
    app = example.mount_scan_receiver(example.create_app(client_factory=client_factory), receiver)
    push_options = {"token": TOKEN}
    if mode == "safe":
        push_options.update(encoding_aes_key=KEY, mode="safe")

    if framework == "fastapi":
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as http,
        ):
            state.configure_push("http://app/wechat", app=app, **push_options)
            scans = await scan_twice(http, state)
        recorded = app.state.scans
    else:
        from aiohttp.test_utils import TestServer

        async with TestServer(app) as server, httpx.AsyncClient(
            base_url=str(server.make_url(""))
        ) as http:  # fmt: skip
            state.configure_push(str(server.make_url("/wechat")), **push_options)
            scans = await scan_twice(http, state)
        recorded = app[example.SCANS]
    await backend.aclose()

    (ticket,) = state.tickets
    assert recorded == [
        events.QrScan("o_e2e", "order-9", ticket, True, recorded[0].create_time, "gh_5a4db0c0ffee",
                      recorded[0].raw),
        events.QrScan("o_e2e", "order-9", ticket, False, recorded[1].create_time, "gh_5a4db0c0ffee",
                      recorded[1].raw),
    ]  # fmt: skip
    assert scans == [
        {"openid": "o_e2e", "scene": "order-9", "new_follower": True},
        {"openid": "o_e2e", "scene": "order-9", "new_follower": False},
    ]
    out = capsys.readouterr().out
    assert "o_e2e followed by scanning scene 'order-9'" in out
    assert "o_e2e scanned (a follower) scene 'order-9'" in out


async def scan_twice(http: httpx.AsyncClient, state: SandboxState) -> list:
    assert (await http.get("/qrcode/order-9")).status_code == 200  # the example makes a code
    (ticket,) = state.tickets
    first = await state.scan(ticket, openid="o_e2e", following=False)
    second = await state.scan(ticket, openid="o_e2e")
    assert first.delivered
    assert second.delivered
    assert [d.body for d in first.deliveries] == [b"success"]
    return (await http.get("/scans")).json()


def test_without_a_push_token_nothing_is_mounted(monkeypatch):
    monkeypatch.delenv("WXQR_PUSH_TOKEN", raising=False)
    for name in ("fastapi_app", "aiohttp_app"):
        assert load(name).receiver_from_env() is None
