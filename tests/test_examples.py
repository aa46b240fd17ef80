"""The FastAPI and aiohttp examples, run against the sandbox: same routes, same error answers."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import anyio
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
    # In sandbox mode image_url is the app's own /showqrcode (the in-process sandbox's URLs
    # cannot be fetched from outside): fetch it as any client would.
    assert results[-1]["image_url"].startswith(str(api.base_url).rstrip("/") + "/showqrcode?")
    image = await api.get(results[-1]["image_url"])
    assert image.status_code == 200
    assert decode(image.content) == results[-1]["url"]
    assert state.token_fetches["stable_token"] == 1
    assert state.max_in_flight["cgi-bin/qrcode/create"] == 16  # BATCH_CONCURRENCY


@pytest.mark.parametrize(
    ("method", "path", "body", "argument"),
    [
        pytest.param("POST", "/qrcodes", {"scenes": ["1"] * 101}, "scenes", id="101-scenes"),
        pytest.param("POST", "/qrcodes", {"scenes": []}, "scenes", id="no-scenes"),
        pytest.param("POST", "/qrcodes", {"nope": 1}, "scenes", id="no-scenes-key"),
        pytest.param("POST", "/qrcodes", {"scenes": [1]}, "scenes", id="not-strings"),
        pytest.param("GET", "/qrcode/x?expire_seconds=soon", None, "expire_seconds", id="expire"),
        pytest.param("GET", "/qrcode/", None, "scene_str", id="empty-scene"),
        pytest.param("GET", "/qrcode/x?expire_seconds=0", None, "expire_seconds", id="expire-0"),
    ],
)
async def test_bad_requests_are_the_same_json_422_in_both_apps(api, method, path, body, argument):
    answer = await api.request(method, path, json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()
    assert error["error"] == "ValidationError"
    assert error["argument"].startswith(argument)
    assert error["message"]


async def test_an_empty_scene_in_a_batch_is_a_422_result(api):
    answer = await api.post("/qrcodes", json={"scenes": ["", "ok"]})
    assert answer.status_code == 200
    empty, ok = answer.json()["results"]
    assert (empty["ok"], empty["status"], empty["argument"]) == (False, 422, "scene_str")
    assert ok["ok"] is True


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


SCENE_RULE_CASES = ["0", "42", "-7", "007", "+1", "4294967296", "order-9"]


async def test_scenes_mean_the_same_as_for_the_wxqr_command(api, state, tmp_path):
    """``GET /qrcode/0`` and ``wxqr qrcode 0`` agree (as for every other scene)."""
    import csv
    import subprocess

    out = tmp_path / "cli"
    subprocess.run(
        [sys.executable, "-m", "wxqr", "qrcode", "--sandbox", *SCENE_RULE_CASES, "--out",
         str(out)],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        cli = {row["scene"]: row for row in csv.DictReader(fh)}
    for scene in SCENE_RULE_CASES:
        answer = await api.get(f"/qrcode/{scene}")
        assert (answer.status_code == 200) == (cli[scene]["status"] == "ok"), scene
        if answer.status_code != 200:
            argument = answer.json()["argument"]
            assert cli[scene]["error"].startswith(f"ValidationError: {argument}:"), scene
    assert cli["0"]["status"] == "failed"  # 0 is a scene_id, and temporary ids are non-zero
    kinds = [(t.scene, t.action_name) for t in state.tickets.values()]
    assert kinds == [(42, "QR_SCENE"), (-7, "QR_SCENE"), ("007", "QR_STR_SCENE"),
                     ("+1", "QR_STR_SCENE"), ("order-9", "QR_STR_SCENE")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    [
        pytest.param(["examples/aiohttp_app.py", "--host", "127.0.0.1", "--port"], id="script"),
        pytest.param(
            ["-m", "aiohttp.web", "-H", "127.0.0.1", "examples.aiohttp_app:init_func", "-P"],
            id="python-m-aiohttp.web",
        ),
    ],
)
async def test_the_aiohttp_example_serves_on_the_host_and_port_it_is_given(how):
    import subprocess

    from redisserver import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, *how, str(port)],
        cwd=EXAMPLES.parent,
        env={**os.environ, "WXQR_SANDBOX": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(300):
                try:
                    answer = await http.post("/qrcodes", json={"scenes": ["order-9"]})
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stderr.read() if server.stderr else ""
                    await anyio.sleep(0.1)
            (result,) = answer.json()["results"]
            image = await http.get(result["image_url"])  # the app's own, fetchable
    finally:
        server.terminate()
        server.wait(10)
    assert result["image_url"].startswith(f"http://127.0.0.1:{port}/showqrcode?ticket=")
    assert decode(image.content) == result["url"]
