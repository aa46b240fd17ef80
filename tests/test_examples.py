"""The FastAPI and aiohttp examples, run against the sandbox: same routes, same error answers."""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

import wxqr
from wxqr.sandbox import SandboxState, sandbox_client, sandbox_http_client

zxingcpp = pytest.importorskip("zxingcpp")
Image = pytest.importorskip("PIL.Image")
pytest.importorskip("fastapi")
pytest.importorskip("aiohttp")

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # FastAPI and aiohttp apps are asyncio apps


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"wxqr_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def decode(data: bytes) -> str:
    (barcode,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    return str(barcode.text)


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=7)


@pytest.fixture(params=["fastapi", "aiohttp"])
async def api(request, state) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the example app, whose one wxqr.Client uses the sandbox."""
    backend = sandbox_http_client(state)

    def client_factory() -> wxqr.Client:
        return sandbox_client(state, http_client=backend, max_retries=0, max_rate_limit_wait=0)

    app = load(f"{request.param}_app").create_app(client_factory=client_factory)
    if request.param == "fastapi":
        async with (
            app.router.lifespan_context(app),  # what uvicorn runs at startup/shutdown
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as http,
        ):
            yield http
    else:
        from aiohttp.test_utils import TestServer

        async with (
            TestServer(app) as server,  # a real loopback server; runs cleanup_ctx
            httpx.AsyncClient(base_url=str(server.make_url(""))) as http,
        ):
            yield http
    await backend.aclose()


async def test_get_qrcode_returns_a_scannable_image(api, state):
    answer = await api.get("/qrcode/order-9")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert decode(answer.content) == answer.headers["x-qr-url"]
    (ticket,) = state.tickets.values()
    assert (ticket.scene, ticket.action_name) == ("order-9", "QR_STR_SCENE")
    assert ticket.url == answer.headers["x-qr-url"]


async def test_integer_scenes_are_scene_ids_and_slashes_are_kept(api, state):
    assert (await api.get("/qrcode/42")).status_code == 200
    assert (await api.get("/qrcode/shop/7")).status_code == 200
    scenes = [(t.scene, t.action_name) for t in state.tickets.values()]
    assert scenes == [(42, "QR_SCENE"), ("shop/7", "QR_STR_SCENE")]


async def test_batch_reports_every_scene_in_order_with_bounded_concurrency(api, state):
    state.faults.add("cgi-bin/qrcode/create", "latency", seconds=0.02, probability=1.0)
    scenes = [str(i) for i in range(1, 60)] + ["x" * 65, "order-9"]
    answer = await api.post("/qrcodes", json={"scenes": scenes, "expire_seconds": 3600})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["scene"] for r in results] == scenes
    assert [r["ok"] for r in results] == [True] * 59 + [False, True]
    assert results[59]["status"] == 422
    assert results[59]["error"] == "ValidationError"
    assert results[-1]["expire_seconds"] == 3600
    async with sandbox_http_client(state) as wechat:  # image_url is WeChat's showqrcode URL
        image = await wechat.get(results[-1]["image_url"])
    assert decode(image.content) == results[-1]["url"]
    assert state.token_fetches["stable_token"] == 1
    assert state.max_in_flight["cgi-bin/qrcode/create"] == 16  # BATCH_CONCURRENCY


async def test_batch_input_is_checked(api):
    assert (await api.post("/qrcodes", json={"scenes": ["1"] * 101})).status_code == 422
    assert (await api.post("/qrcodes", json={"scenes": []})).status_code == 422
    assert (await api.post("/qrcodes", json={"nope": 1})).status_code == 422


@pytest.mark.parametrize(
    ("endpoint", "fault", "status", "error"),
    [
        pytest.param(None, None, 422, "ValidationError", id="validation-422"),
        pytest.param(
            "cgi-bin/qrcode/create", {"errcode": 45011}, 429, "RateLimitError", id="45011-429"
        ),
        pytest.param(
            "cgi-bin/qrcode/create", {"errcode": 45009}, 503, "QuotaExceededError", id="45009-503"
        ),
        pytest.param(
            "cgi-bin/showqrcode", {"kind": "http_status", "status": 404}, 404,
            "TicketNotFoundError", id="showqrcode-404",
        ),
        pytest.param(
            "cgi-bin/qrcode/create", {"errcode": 40013}, 502, "CredentialError", id="40013-502"
        ),
        pytest.param("cgi-bin/qrcode/create", {"kind": "drop"}, 504, "TransportError", id="504"),
        pytest.param(
            "cgi-bin/showqrcode", {"kind": "truncated_image"}, 502, "ResponseDecodeError",
            id="truncated-502",
        ),
    ],
)  # fmt: skip
async def test_wxqr_errors_become_http_answers(api, state, endpoint, fault, status, error):
    if endpoint is not None:
        spec = dict(fault)
        state.faults.add(endpoint, spec.pop("kind", "errcode"), times=1, **spec)
    scene = "x" * 65 if endpoint is None else "order-9"

    answer = await api.get(f"/qrcode/{scene}")

    assert answer.status_code == status
    body = answer.json()
    assert body["error"] == error
    if status == 429:
        assert int(answer.headers["retry-after"]) >= 1
    if "errcode" in (fault or {}):
        assert body["errcode"] == fault["errcode"]
        assert body["rid"]  # what WeChat support asks for
    if endpoint is None:
        assert body["argument"] == "scene_str"
