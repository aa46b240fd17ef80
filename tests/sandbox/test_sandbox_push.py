"""The sandbox pushes scans the way WeChat does, to a real wxqr.events.Receiver."""

from __future__ import annotations

import threading

import anyio
import httpx
import pytest

from wxqr import ValidationError, events
from wxqr.sandbox import DEFAULT_APPID, SandboxState, build_parser, sandbox_client, served
from wxqr.sandbox._serve import state_from_args

pytestmark = pytest.mark.anyio
pytest.importorskip("cryptography")

TOKEN = "push-token-0123"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class Recorder:
    """An ASGI wrapper recording what reaches the receiver, then delegating to it."""

    def __init__(self, app, *, delay: float = 0.0, fail: int = 0) -> None:
        self.app, self.delay, self.fail = app, delay, fail
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from urllib.parse import parse_qsl

        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append((dict(parse_qsl(scope["query_string"].decode())), body))
        if self.delay:
            await anyio.sleep(self.delay)
        if len(self.requests) <= self.fail:
            await send({"type": "http.response.start", "status": 502, "headers": []})
            return await send({"type": "http.response.body", "body": b"bad gateway"})
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def make_receiver(state: SandboxState, mode: str) -> tuple[events.Receiver, list]:
    options = {} if mode == "plain" else {"encoding_aes_key": KEY, "appid": DEFAULT_APPID}
    receiver = events.Receiver(TOKEN, clock=state.clock.now, **options)
    seen: list[events.QrScan] = []

    @receiver.on_scan
    async def scanned(scan: events.QrScan) -> None:
        seen.append(scan)

    return receiver, seen


async def create_code(state: SandboxState, **scene) -> str:
    async with sandbox_client(state) as wx:
        return (await wx.qrcode.create_temporary(expire_seconds=600, **scene)).ticket


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
async def test_a_scan_pushes_subscribe_then_scan(state, mode):
    receiver, seen = make_receiver(state, mode)
    recorder = Recorder(receiver.asgi_app)
    key = None if mode == "plain" else KEY
    state.configure_push("http://app/wechat", token=TOKEN, app=recorder, encoding_aes_key=key,
                         mode=mode)  # fmt: skip
    ticket = await create_code(state, scene_str="order-9")

    first = await state.scan(ticket, openid="o_alice", following=False)
    second = await state.scan(ticket, openid="o_alice")  # now a follower: remembered

    assert first is not None
    assert second is not None
    assert (first.event, first.event_key, second.event, second.event_key) == (
        "subscribe", "qrscene_order-9", "SCAN", "order-9",
    )  # fmt: skip
    assert [(s.openid, s.scene, s.new_follower, s.ticket) for s in seen] == [
        ("o_alice", "order-9", True, ticket),
        ("o_alice", "order-9", False, ticket),
    ]
    assert [d.status for d in first.deliveries] == [200]
    query, body = recorder.requests[0]
    assert events.check_signature(TOKEN, timestamp=query["timestamp"], nonce=query["nonce"],
                                  signature=query["signature"])  # fmt: skip
    assert query["openid"] == "o_alice"
    if mode == "plain":
        assert "encrypt_type" not in query
        assert b"qrscene_order-9" in body
    else:
        assert query["encrypt_type"] == "aes"
        assert b"<Encrypt>" in body
        assert (b"qrscene_order-9" in body) is (mode == "compatible")


async def test_scene_ids_arrive_as_strings(state):
    receiver, seen = make_receiver(state, "plain")
    state.configure_push(token=TOKEN, app=receiver.asgi_app)
    ticket = await create_code(state, scene_id=123)
    await state.scan(ticket, openid="o_bob", following=True)
    assert [(s.scene, s.new_follower) for s in seen] == [("123", False)]


async def test_nothing_is_pushed_for_unknown_or_expired_codes_or_a_user_who_does_not_follow(state):
    receiver, seen = make_receiver(state, "plain")
    recorder = Recorder(receiver.asgi_app)
    state.configure_push(token=TOKEN, app=recorder)
    ticket = await create_code(state, scene_id=5)

    assert await state.scan("no-such-ticket", openid="o_1") is None
    assert await state.scan(ticket, openid="o_1", following=False, follow=False) is None
    state.clock.advance(601)
    assert await state.scan(ticket, openid="o_1", following=True) is None
    assert recorder.requests == []
    assert seen == []
    assert state.pushes == []


async def test_a_failed_answer_is_delivered_again_and_the_receiver_runs_once(state):
    receiver, seen = make_receiver(state, "safe")
    recorder = Recorder(receiver.asgi_app, fail=2)
    state.configure_push(token=TOKEN, app=recorder, encoding_aes_key=KEY, mode="safe")
    push = await state.scan(await create_code(state, scene_id=7), openid="o_c", following=False)
    assert [d.status for d in push.deliveries] == [502, 502, 200]
    assert push.delivered
    nonces = {query["nonce"] for query, _ in recorder.requests}
    assert len(nonces) == 3  # each delivery is signed afresh
    assert len(seen) == 1


async def test_three_timeouts_then_wechat_gives_up(state):
    receiver, seen = make_receiver(state, "plain")
    recorder = Recorder(receiver.asgi_app, delay=0.5)
    state.configure_push(token=TOKEN, app=recorder, answer_timeout=0.1)
    before = state.clock.now()
    push = await state.scan(await create_code(state, scene_id=8), openid="o_d", following=True)
    assert [(d.status, d.error) for d in push.deliveries] == [(None, "timeout")] * 3
    assert not push.delivered
    assert state.clock.now() == pytest.approx(before + 0.3)  # the frozen clock moved 3 x 0.1 s
    assert seen == []  # each delivery was abandoned before reaching the handler


async def test_the_duplicate_fault_delivers_twice_and_dedup_holds(state):
    receiver, seen = make_receiver(state, "plain")
    state.configure_push(token=TOKEN, app=receiver.asgi_app, duplicate=2)
    push = await state.scan(await create_code(state, scene_id=9), openid="o_e", following=True)
    assert [(d.status, d.duplicate, d.body) for d in push.deliveries] == [
        (200, False, b"success"), (200, True, b"success"), (200, True, b"success"),
    ]  # fmt: skip
    assert len(seen) == 1


async def test_scan_needs_a_push_configuration_and_checks_its_arguments(state):
    with pytest.raises(RuntimeError, match="configure_push"):
        await state.scan("t", openid="o")
    state.configure_push(token=TOKEN)
    for kwargs, argument in (
        ({"ticket": ""}, "ticket"),
        ({"ticket": 5}, "ticket"),
        ({"ticket": "t", "openid": ""}, "openid"),
        ({"ticket": "t", "following": "yes"}, "following"),
    ):
        with pytest.raises(ValidationError) as caught:
            await state.scan(kwargs.pop("ticket"), **kwargs)
        assert caught.value.argument == argument


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        pytest.param({"mode": "safe"}, "encoding_aes_key", id="safe-without-key"),
        pytest.param({"mode": "loud"}, "mode", id="unknown-mode"),
        pytest.param({"token": ""}, "token", id="empty-token"),
        pytest.param({"deliveries": 0}, "deliveries", id="no-deliveries"),
    ],
)
def test_push_configuration_is_validated(state, options, argument):
    with pytest.raises(ValidationError) as caught:
        state.configure_push("http://x/", **{"token": TOKEN, **options})
    assert caught.value.argument == argument


def test_served_sandbox_pushes_to_a_served_receiver_on_post_sandbox_scan():
    state = SandboxState(seed=3)
    receiver = events.Receiver(TOKEN, encoding_aes_key=KEY, appid=DEFAULT_APPID)
    seen: list[events.QrScan] = []
    lock = threading.Lock()

    @receiver.on_scan
    async def scanned(scan: events.QrScan) -> str:
        with lock:
            seen.append(scan)
        return f"hello {scan.scene}"

    with (
        served(app=receiver.asgi_app) as receiver_url,  # uvicorn runs its lifespan
        served(state) as sandbox_url,
        httpx.Client(base_url=sandbox_url, timeout=30) as http,
    ):
        assert http.post("/sandbox/scan", json={"ticket": "x"}).status_code == 409
        state.configure_push(f"{receiver_url}/wechat", token=TOKEN, encoding_aes_key=KEY,
                             mode="safe")  # fmt: skip
        token = state.issue_token()
        body = {"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "s-1"}}}
        ticket = http.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=body)
        ticket = ticket.json()["ticket"]

        answer = http.post("/sandbox/scan", json={"ticket": ticket, "openid": "o_web"})
        assert answer.status_code == 200
        result = answer.json()
        assert result["pushed"]
        assert result["delivered"]
        assert (result["event"], result["event_key"]) == ("subscribe", "qrscene_s-1")
        assert http.post("/sandbox/scan", json={"ticket": "unknown"}).json() == {"pushed": False}
        assert http.post("/sandbox/scan", content=b"[").status_code == 400
        for bad in ({"following": "yes"}, {"follow": "no"}, {"openid": 7}):
            assert http.post("/sandbox/scan", json={"ticket": ticket, **bad}).status_code == 400
        declined = {"ticket": ticket, "openid": "o_x", "follow": False}
        assert http.post("/sandbox/scan", json=declined).json() == {"pushed": False}
    assert [(s.openid, s.scene, s.new_follower) for s in seen] == [("o_web", "s-1", True)]
    # The passive reply came back encrypted (safe mode), as WeChat requires.
    reply = state.pushes[0].deliveries[0].body
    assert b"<Encrypt>" in reply
    assert b"hello" not in reply
    assert "sandbox/scan" not in state.calls  # the control endpoint is not a WeChat API


def test_cli_push_options():
    args = build_parser().parse_args(
        ["--push-url", "http://127.0.0.1:9/wechat", "--push-token", TOKEN, "--push-aes-key", KEY]
    )
    state = state_from_args(args)
    assert (state.push.url, state.push.mode, state.push.appid) == (
        "http://127.0.0.1:9/wechat", "safe", DEFAULT_APPID,
    )  # fmt: skip
    assert TOKEN not in repr(state.push)
    assert KEY not in repr(state.push)
    plain = state_from_args(
        build_parser().parse_args(
            ["--push-url", "http://h/", "--push-token", "t", "--push-duplicate", "2"]
        )
    )
    assert (plain.push.mode, plain.push.duplicate) == ("plain", 2)
    with pytest.raises(ValueError, match="go together"):
        state_from_args(build_parser().parse_args(["--push-url", "http://h/"]))
    with pytest.raises(ValueError):
        state_from_args(build_parser().parse_args(["--push-url", "http://h/", "--push-token", "t",
                                                   "--push-mode", "safe"]))  # fmt: skip
