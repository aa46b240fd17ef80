"""Receiver.handle: verification, the three modes, refusals, dedup, replies, the reply deadline.

Backend-neutral: every test runs on asyncio and trio.
"""

from __future__ import annotations

import json
import logging
import time

import anyio
import pytest
from events_helpers import (
    ACCOUNT,
    APPID,
    GET_VECTOR,
    KEY,
    OPENID,
    OTHER_KEY,
    POST_VECTOR,
    SAFE_ENCRYPT,
    SAFE_QUERY,
    TOKEN,
    encrypted_push,
    event_json,
    event_xml,
    signed_query,
)

from wxqr import events

pytestmark = pytest.mark.anyio
pytest.importorskip("cryptography")


class Calls:
    """Records what handlers received."""

    def __init__(self) -> None:
        self.seen: list[events.QrScan | events.Event] = []

    def scan_handler(self, reply: str | None = None):
        async def handler(scan: events.QrScan) -> str | None:
            self.seen.append(scan)
            return reply

        return handler


def safe_receiver(**options) -> events.Receiver:
    return events.Receiver(TOKEN, encoding_aes_key=KEY, appid=APPID, **options)


def crypto(key: str = KEY) -> events.MessageCrypto:
    return events.MessageCrypto(TOKEN, key, APPID)


# -- the official vectors through the receiver ----------------------------------------------------
async def test_url_verification_echoes_echostr_in_every_mode():
    for receiver in (
        events.Receiver(TOKEN, clock=lambda: 1714036504),
        safe_receiver(clock=lambda: 1714036504),
    ):
        answer = await receiver.handle("GET", GET_VECTOR, b"")
        assert (answer.status, answer.body) == (200, b"4375120948345356249")
        assert answer.content_type.startswith("text/plain")


async def test_official_plaintext_post_reaches_the_scan_handler():
    calls = Calls()
    receiver = events.Receiver(TOKEN, clock=lambda: 1714037059)
    receiver.on_scan(calls.scan_handler())
    answer = await receiver.handle("POST", POST_VECTOR, event_xml().encode())
    assert (answer.status, answer.body) == (200, b"success")
    (scan,) = calls.seen
    assert (scan.scene, scan.new_follower, scan.ticket) == ("123123", True, "TICKET")


async def test_official_safe_mode_post_is_decrypted_and_dispatched():
    seen: list[events.Event] = []
    receiver = safe_receiver(clock=lambda: 1714112445)

    @receiver.on("debug_demo")
    async def demo(event: events.Event) -> None:
        seen.append(event)

    body = json.dumps({"ToUserName": "gh_97417a04a28d", "Encrypt": SAFE_ENCRYPT}).encode()
    answer = await receiver.handle("POST", SAFE_QUERY, body)
    assert (answer.status, answer.body) == (200, b"success")
    (event,) = seen
    assert (event.name, event.openid, event.raw["debug_str"]) == (
        "debug_demo",
        "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
        "hello world",
    )


# -- refusals -------------------------------------------------------------------------------------
def _plain(**change):
    query = signed_query()
    query.update(change)
    return "POST", query, event_xml().encode()


def _safe(plaintext=None, *, key=KEY, appid=APPID, **change):
    query, body = encrypted_push(events.MessageCrypto(TOKEN, key, appid), plaintext or event_xml())
    query.update(change)
    return "POST", query, body


def _bad_padding():
    method, query, body = _safe()
    text = body.decode()
    start = text.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    end = text.index("]]>", start)
    # A valid-looking 64-byte ciphertext that decrypts to garbage padding.
    import base64

    from events_helpers import sha1_sorted

    garbage = base64.b64encode(bytes(range(64))).decode()
    query["msg_signature"] = sha1_sorted(TOKEN, query["timestamp"], query["nonce"], garbage)
    return method, query, (text[:start] + garbage + text[end:]).encode()


REFUSALS = [
    pytest.param(lambda: _plain(signature="0" * 40), 403, events.SignatureError, -40001,
                 id="bad-signature"),
    pytest.param(lambda: ("POST", {"timestamp": "1", "nonce": "2"}, event_xml().encode()), 403,
                 events.SignatureError, -40001, id="no-signature"),
    pytest.param(lambda: ("POST", signed_query(timestamp=int(time.time()) - 3600),
                          event_xml().encode()), 403, events.SignatureError, -40001,
                 id="stale-timestamp"),
    pytest.param(lambda: ("POST", signed_query(timestamp=int(time.time()) + 3600),
                          event_xml().encode()), 403, events.SignatureError, -40001,
                 id="future-timestamp"),
    pytest.param(lambda: ("GET", {**signed_query(), "signature": "1" * 40, "echostr": "x"}), 403,
                 events.SignatureError, -40001, id="get-bad-signature"),
    pytest.param(lambda: ("POST", signed_query(), b"<xml>" + b" " * 70000 + b"</xml>"), 413,
                 events.MalformedMessage, -40002, id="too-large"),
    pytest.param(lambda: ("POST", signed_query(), b'<!DOCTYPE x [<!ENTITY a "b">]><xml/>'), 400,
                 events.MalformedMessage, -40002, id="doctype"),
    pytest.param(lambda: ("POST", signed_query(), b"<xml><a>"), 400, events.MalformedMessage,
                 -40002, id="malformed-xml"),
    pytest.param(lambda: ("POST", signed_query(), b'{"a": '), 400, events.MalformedMessage, -40002,
                 id="malformed-json"),
    pytest.param(lambda: _safe(appid="wx0000000000000000"), 400, events.AppIdMismatch, -40005,
                 id="wrong-appid"),
    pytest.param(_bad_padding, 400, events.DecryptError, -40008, id="bad-padding"),
    pytest.param(lambda: _safe(key=OTHER_KEY), 400, events.DecryptError, -40008, id="wrong-key"),
    pytest.param(lambda: _safe(msg_signature="0" * 40), 403, events.SignatureError, -40001,
                 id="bad-msg-signature"),
    pytest.param(lambda: _safe(signature="0" * 40), 403, events.SignatureError, -40001,
                 id="safe-mode-still-checks-signature"),
    pytest.param(lambda: ("POST", {**signed_query(), "encrypt_type": "aes", "msg_signature": "x"},
                          event_xml().encode()), 400, events.MalformedMessage, -40002,
                 id="aes-without-encrypt"),
    pytest.param(lambda: ("GET", signed_query()), 400, events.MalformedMessage, -40002,
                 id="get-without-echostr"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "status", "error", "code"), REFUSALS)
async def test_refusals_call_no_handler_and_leak_nothing(request_, status, error, code, caplog):
    method, query, *rest = request_()
    body = rest[0] if rest else b""
    calls = Calls()
    receiver = safe_receiver()
    receiver.on_scan(calls.scan_handler("should never be sent"))
    caplog.set_level(logging.WARNING, "wxqr.events")

    answer = await receiver.handle(method, query, body)

    assert answer.status == status
    assert isinstance(answer.error, error)
    assert answer.error.code == code
    assert calls.seen == []
    # The body is the same for every refusal of a status: it never says which check failed.
    assert (
        answer.body == {400: b"bad request", 403: b"forbidden", 413: b"payload too large"}[status]
    )
    assert type(answer.error).__name__ in caplog.text  # ...the log does
    assert TOKEN not in caplog.text
    assert KEY not in caplog.text


async def test_encrypted_push_to_a_plaintext_receiver_is_refused():
    calls = Calls()
    receiver = events.Receiver(TOKEN)
    receiver.on_scan(calls.scan_handler())
    answer = await receiver.handle(*_safe())
    assert answer.status == 400
    assert isinstance(answer.error, events.DecryptError)
    assert answer.error.code == -40004
    assert calls.seen == []


async def test_other_methods_are_refused():
    answer = await events.Receiver(TOKEN).handle("PUT", signed_query(), b"")
    assert answer.status == 405


async def test_max_skew_none_accepts_old_timestamps():
    receiver = events.Receiver(TOKEN, max_skew=None)
    answer = await receiver.handle("GET", GET_VECTOR, b"")
    assert answer.status == 200


# -- modes and keys -------------------------------------------------------------------------------
async def test_key_rotation_tries_the_previous_key_and_replies_with_it():
    calls = Calls()
    receiver = events.Receiver(TOKEN, encoding_aes_key=OTHER_KEY, previous_aes_key=KEY, appid=APPID)
    receiver.on_scan(calls.scan_handler("hello"))
    for key, scene in ((KEY, "old"), (OTHER_KEY, "new")):
        query, body = encrypted_push(crypto(key), event_xml("SCAN", scene), nonce=f"n-{scene}")
        answer = await receiver.handle("POST", query, body)
        assert answer.status == 200
        encrypt = body_field(answer.body, "Encrypt")
        signed = (body_field(answer.body, "MsgSignature"), body_field(answer.body, "TimeStamp"))
        text = crypto(key).decrypt(encrypt, msg_signature=signed[0], timestamp=signed[1],
                                   nonce=f"n-{scene}")  # fmt: skip
        assert "<Content><![CDATA[hello]]></Content>" in text
        other = OTHER_KEY if key == KEY else KEY
        with pytest.raises((events.DecryptError, events.AppIdMismatch)):
            crypto(other).decrypt(encrypt, msg_signature=signed[0], timestamp=signed[1],
                                  nonce=f"n-{scene}")  # fmt: skip
    assert [s.scene for s in calls.seen] == ["old", "new"]


def body_field(body: bytes, name: str) -> str:
    text = body.decode()
    if text.startswith("{"):
        return str(json.loads(text)[name])
    start = text.index(f"<{name}>") + len(name) + 2
    value = text[start : text.index(f"</{name}>")]
    return value.removeprefix("<![CDATA[").removesuffix("]]>")


async def test_compatible_mode_trusts_only_the_encrypted_copy():
    calls = Calls()
    receiver = safe_receiver()
    receiver.on_scan(calls.scan_handler())
    query, body = encrypted_push(crypto(), event_xml("SCAN", "real"), compatible=True)
    forged = body.replace(b"<![CDATA[real]]>", b"<![CDATA[forged]]>", 1)
    assert forged != body
    answer = await receiver.handle("POST", query, forged)
    assert answer.status == 200
    assert [s.scene for s in calls.seen] == ["real"]


async def test_plaintext_push_to_a_safe_receiver_is_accepted():
    # Mode changes take effect immediately (reference §1.1); the token still authenticates.
    calls = Calls()
    receiver = safe_receiver()
    receiver.on_scan(calls.scan_handler())
    answer = await receiver.handle("POST", signed_query(), event_xml("SCAN", "7").encode())
    assert answer.status == 200
    assert [s.scene for s in calls.seen] == ["7"]


# -- replies --------------------------------------------------------------------------------------
async def test_plaintext_text_reply_is_addressed_to_the_scanner():
    receiver = events.Receiver(TOKEN)
    receiver.on_scan(Calls().scan_handler("欢迎 ]]> <b>"))
    answer = await receiver.handle("POST", signed_query(), event_xml().encode())
    assert answer.status == 200
    assert answer.content_type.startswith("application/xml")
    reply = events.parse(answer.body)
    assert isinstance(reply, events.Event)
    assert (reply.name, reply.openid, reply.account) == ("text", ACCOUNT, OPENID)
    assert reply.raw["ToUserName"] == OPENID
    assert reply.raw["Content"] == "欢迎 ]]> <b>"
    assert abs(reply.create_time - time.time()) < 60


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_safe_mode_reply_is_encrypted_and_signed(fmt):
    receiver = safe_receiver()
    receiver.on_scan(Calls().scan_handler("welcome"))
    plaintext = event_xml("SCAN", "9") if fmt == "xml" else event_json("SCAN", "9")
    query, body = encrypted_push(crypto(), plaintext, fmt=fmt, nonce="echo-me")
    answer = await receiver.handle("POST", query, body)
    assert answer.status == 200
    assert answer.content_type.startswith(f"application/{fmt}")
    assert b"welcome" not in answer.body
    assert body_field(answer.body, "Nonce") == "echo-me"
    inner = crypto().decrypt(
        body_field(answer.body, "Encrypt"),
        msg_signature=body_field(answer.body, "MsgSignature"),
        timestamp=body_field(answer.body, "TimeStamp"),
        nonce="echo-me",
    )
    reply = events.parse(inner)
    assert (reply.name, reply.raw["Content"], reply.raw["ToUserName"]) == (
        "text",
        "welcome",
        OPENID,
    )
    if fmt == "json":
        assert isinstance(json.loads(answer.body)["TimeStamp"], int)


# -- dispatch -------------------------------------------------------------------------------------
async def test_named_handlers_and_fallbacks():
    seen: list[tuple[str, object]] = []
    receiver = events.Receiver(TOKEN)

    @receiver.on("unsubscribe")
    async def gone(event: events.Event) -> None:
        seen.append(("unsubscribe", event))

    @receiver.on("subscribe")
    async def followed(event: events.Event) -> None:
        seen.append(("subscribe", event))

    for body in (
        event_xml("unsubscribe", None, None, create_time=1),
        event_xml("subscribe", None, None, create_time=2),  # plain follow
        event_xml("subscribe", "qrscene_5", "T", create_time=3),  # no on_scan: falls back
        event_xml("SCAN", "5", "T", create_time=4),  # no on("SCAN"): nobody
        event_xml("LOCATION", None, None, create_time=5),
    ):
        assert (await receiver.handle("POST", signed_query(), body.encode())).body == b"success"
    assert [(name, type(e).__name__, e.create_time) for name, e in seen] == [
        ("unsubscribe", "Event", 1),
        ("subscribe", "Event", 2),
        ("subscribe", "Event", 3),
    ]

    calls = Calls()
    receiver.on_scan(calls.scan_handler())
    await receiver.handle("POST", signed_query(), event_xml("subscribe", "qrscene_6", "T").encode())
    assert [s.scene for s in calls.seen] == ["6"]
    assert len(seen) == 3  # the scan went to on_scan only


# -- de-duplication --------------------------------------------------------------------------------
async def test_three_concurrent_deliveries_run_the_handler_once():
    runs = 0

    async def slow(scan: events.QrScan) -> None:
        nonlocal runs
        runs += 1
        await anyio.sleep(0.2)

    receiver = events.Receiver(TOKEN)
    receiver.on_scan(slow)
    answers = []
    body = event_xml().encode()
    async with receiver, anyio.create_task_group() as tg:
        for nonce in ("a", "b", "c"):  # WeChat's resends carry a new nonce

            async def deliver(nonce=nonce):
                answers.append(await receiver.handle("POST", signed_query(nonce=nonce), body))

            tg.start_soon(deliver)
    assert runs == 1
    assert [a.status for a in answers] == [200, 200, 200]
    assert {a.body for a in answers} == {b"success"}


async def test_a_raising_handler_answers_500_and_the_resend_runs_it(caplog):
    attempts: list[str] = []

    async def flaky(scan: events.QrScan) -> str:
        attempts.append(scan.scene)
        if len(attempts) == 1:
            raise RuntimeError("database down")
        return "ok"

    receiver = events.Receiver(TOKEN)
    receiver.on_scan(flaky)
    body = event_xml().encode()
    async with receiver:
        first = await receiver.handle("POST", signed_query(nonce="1"), body)
        second = await receiver.handle("POST", signed_query(nonce="2"), body)
        third = await receiver.handle("POST", signed_query(nonce="3"), body)
    assert first.status == 500
    assert b"database" not in first.body
    assert "database down" in caplog.text
    assert second.status == 200
    assert b"ok" in second.body
    assert (third.status, third.body) == (200, b"success")  # done once: not again
    assert attempts == ["123123", "123123"]


async def test_distinct_events_are_not_merged():
    calls = Calls()
    receiver = events.Receiver(TOKEN)
    receiver.on_scan(calls.scan_handler())
    # Same user, same second: a scan of two different codes (WxJava#2231).
    for key, ticket in (("1", "T1"), ("2", "T2"), ("1", "T1")):
        await receiver.handle("POST", signed_query(), event_xml("SCAN", key, ticket).encode())
    assert [s.scene for s in calls.seen] == ["1", "2"]


async def test_dedup_keys_hold_no_user_data():
    scan = events.parse(event_xml("SCAN", "secret-scene", "TICKET-X"))
    key = events.dedup_key(scan)
    assert key.startswith(ACCOUNT + ":")
    for part in (OPENID, "secret-scene", "TICKET-X"):
        assert part not in key


# -- answering in time ----------------------------------------------------------------------------
async def test_a_slow_handler_is_answered_success_in_time_and_still_completes():
    finished = anyio.Event()

    async def slow(scan: events.QrScan) -> str:
        await anyio.sleep(2.0)
        finished.set()
        return "too late to be sent"

    receiver = events.Receiver(TOKEN, reply_deadline=0.3)
    receiver.on_scan(slow)
    async with receiver:
        started = time.monotonic()
        answer = await receiver.handle("POST", signed_query(), event_xml().encode())
        elapsed = time.monotonic() - started
        assert (answer.status, answer.body) == (200, b"success")
        assert 0.25 <= elapsed < 1.8  # answered at the deadline, before the handler ended
        assert not finished.is_set()
        with anyio.fail_after(10):
            await finished.wait()


async def test_a_background_failure_is_logged(caplog):
    async def slow_failure(scan: events.QrScan) -> None:
        await anyio.sleep(0.3)
        raise ValueError("late boom")

    receiver = events.Receiver(TOKEN, reply_deadline=0.1)
    receiver.on_scan(slow_failure)
    async with receiver:
        answer = await receiver.handle("POST", signed_query(), event_xml().encode())
        assert answer.body == b"success"
    # Leaving the block waited for the handler (within shutdown_grace).
    assert "failed after the reply deadline" in caplog.text
    assert "late boom" in caplog.text


async def test_closing_cancels_handlers_after_the_grace_period():
    cancelled = anyio.Event()

    async def forever(scan: events.QrScan) -> None:
        try:
            await anyio.sleep(60)
        finally:
            cancelled.set()

    receiver = events.Receiver(TOKEN, reply_deadline=0.05, shutdown_grace=0.2)
    receiver.on_scan(forever)
    with anyio.fail_after(10):
        async with receiver:
            await receiver.handle("POST", signed_query(), event_xml().encode())
    assert cancelled.is_set()


async def test_an_unopened_receiver_runs_handlers_inline_and_says_so(caplog):
    async def slow(scan: events.QrScan) -> str:
        await anyio.sleep(0.2)
        return "late but sent"

    receiver = events.Receiver(TOKEN, reply_deadline=0.05)
    receiver.on_scan(slow)
    answer = await receiver.handle("POST", signed_query(), event_xml().encode())
    assert b"late but sent" in answer.body
    assert "not opened" in caplog.text


# -- construction ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "argument"),
    [
        pytest.param({"token": ""}, "token", id="empty-token"),
        pytest.param({"encoding_aes_key": KEY}, "appid", id="key-without-appid"),
        pytest.param({"encoding_aes_key": "short", "appid": APPID}, "encoding_aes_key",
                     id="bad-key"),
        pytest.param({"previous_aes_key": KEY, "appid": APPID}, "previous_aes_key",
                     id="previous-without-current"),
        pytest.param({"encoding_aes_key": KEY, "previous_aes_key": "x" * 43 + "!", "appid": APPID},
                     "previous_aes_key", id="bad-previous"),
        pytest.param({"max_skew": 0}, "max_skew", id="max-skew-0"),
        pytest.param({"max_body": 0}, "max_body", id="max-body-0"),
        pytest.param({"max_body": 1.5}, "max_body", id="max-body-float"),
        pytest.param({"reply_deadline": 5.0}, "reply_deadline", id="deadline-5"),
        pytest.param({"reply_deadline": 0}, "reply_deadline", id="deadline-0"),
    ],
)  # fmt: skip
def test_receiver_arguments_are_validated(options, argument):
    from wxqr import ValidationError

    options = {"token": TOKEN, **options}
    token = options.pop("token")
    with pytest.raises(ValidationError) as caught:
        events.Receiver(token, **options)
    assert caught.value.argument == argument
    assert KEY not in str(caught.value)


def test_receiver_repr_holds_no_secret():
    text = repr(events.Receiver("T0kenS3cret", encoding_aes_key=OTHER_KEY, appid=APPID))
    assert "T0kenS3cret" not in text
    assert OTHER_KEY not in text


async def test_the_deadline_counts_from_arrival_and_a_custom_dedup_store_works():
    class SlowDedup:  # a user-written store: the Dedup protocol, e.g. over another database
        def __init__(self):
            self.keys = set()

        async def claim(self, key):
            await anyio.sleep(1.2)  # a slow round trip eats into WeChat's 5 s
            if key in self.keys:
                return False
            self.keys.add(key)
            return True

        async def release(self, key):
            self.keys.discard(key)

    finished = anyio.Event()

    async def slow(scan):
        await anyio.sleep(3.0)
        finished.set()

    dedup = SlowDedup()
    assert isinstance(dedup, events.Dedup)
    receiver = events.Receiver(TOKEN, dedup=dedup, reply_deadline=1.0)
    receiver.on_scan(slow)
    async with receiver:
        started = time.monotonic()
        answer = await receiver.handle("POST", signed_query(), event_xml().encode())
        elapsed = time.monotonic() - started
        assert answer.body == b"success"
        assert 0.95 <= elapsed < 2.0  # 1.0 s after arrival, not 1.0 s after the claim (2.2 s)
        with anyio.fail_after(10):
            await finished.wait()
    assert len(dedup.keys) == 1


async def test_max_body_boundary():
    calls = Calls()
    receiver = events.Receiver(TOKEN, max_body=2048)
    receiver.on_scan(calls.scan_handler())
    body = event_xml().encode()
    exact = body.replace(b"</xml>", b" " * (2048 - len(body)) + b"</xml>")
    assert len(exact) == 2048
    assert (await receiver.handle("POST", signed_query(), exact)).status == 200
    answer = await receiver.handle("POST", signed_query(), exact + b" ")
    assert answer.status == 413
    assert len(calls.seen) == 1
