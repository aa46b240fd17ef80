"""The receiver, its dedup stores and its framework adapters at their exact edges (issue 17:
every mutant of ``wxqr/events/_receiver.py``, ``_dedup.py`` and ``_adapters.py`` that changes
behaviour is caught here or in the receiver and adapter tests)."""

from __future__ import annotations

import logging
import socket
from types import SimpleNamespace

import pytest
from events_helpers import (
    ACCOUNT,
    APPID,
    KEY,
    OPENID,
    OTHER_KEY,
    TOKEN,
    encrypted_push,
    event_json,
    event_xml,
    sha1_sorted,
    signed_query,
)
from redisserver import RedisServer, free_port

from wxqr import ValidationError, events
from wxqr.events import _dedup

pytest.importorskip("cryptography")
pytestmark = pytest.mark.anyio


class Clock:
    """A hand-driven ``time.monotonic`` for the dedup store's expiry."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(_dedup, "time", SimpleNamespace(monotonic=clock))
    return clock


# -- MemoryDedup ----------------------------------------------------------------------------------
async def test_memory_dedup_defaults_remember_a_key_for_60_s(clock):
    dedup = events.MemoryDedup()
    assert (dedup.ttl, dedup.max_size) == (60.0, 100_000)
    assert await dedup.claim("k") is True
    clock.now += 59.999
    assert await dedup.claim("k") is False
    clock.now += 0.001  # exactly ttl later: expired
    assert await dedup.claim("k") is True
    assert len(dedup) == 1


async def test_memory_dedup_expired_keys_are_swept_on_the_next_claim(clock):
    dedup = events.MemoryDedup(ttl=100)
    assert await dedup.claim("a") is True  # expires at 1100
    clock.now = 1050
    assert await dedup.claim("b") is True  # expires at 1150
    clock.now = 1099.5
    assert await dedup.claim("c") is True
    assert len(dedup) == 3  # nothing expired yet
    clock.now = 1100  # "a" expires exactly now
    assert await dedup.claim("d") is True
    assert len(dedup) == 3  # "a" was swept
    clock.now = 1200  # everything before "d" (1200) expired; "d" too
    assert await dedup.claim("e") is True
    assert len(dedup) == 1
    assert await dedup.claim("e") is False


async def test_memory_dedup_a_reclaimed_expired_key_is_remembered_again(clock):
    dedup = events.MemoryDedup(ttl=60, max_size=2)
    assert await dedup.claim("a") is True
    clock.now += 30
    assert await dedup.claim("b") is True
    clock.now += 30  # "a" expired, "b" has 30 s left
    assert await dedup.claim("a") is True
    assert len(dedup) == 2
    clock.now += 10
    assert await dedup.claim("b") is False
    assert await dedup.claim("a") is False


async def test_memory_dedup_when_full_forgets_the_oldest_key_first(clock):
    dedup = events.MemoryDedup(max_size=2)
    for key in ("a", "b", "c"):
        assert await dedup.claim(key) is True
    assert len(dedup) == 2
    assert await dedup.claim("c") is False
    assert await dedup.claim("b") is False
    assert await dedup.claim("a") is True  # "a" was forgotten; now "b" is the oldest
    assert len(dedup) == 2
    assert await dedup.claim("c") is False
    assert await dedup.claim("b") is True


async def test_memory_dedup_of_one_key(clock):
    dedup = events.MemoryDedup(max_size=1)
    assert await dedup.claim("a") is True
    assert await dedup.claim("a") is False
    assert await dedup.claim("b") is True
    assert len(dedup) == 1
    assert await dedup.claim("a") is True


async def test_memory_dedup_release_forgets_a_key(clock):
    dedup = events.MemoryDedup()
    assert await dedup.claim("a") is True
    assert await dedup.claim("b") is True
    await dedup.release("a")
    await dedup.release("never-claimed")
    assert len(dedup) == 1
    assert await dedup.claim("a") is True
    assert await dedup.claim("b") is False


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"max_size": True}, "max_size: must be an integer in 1..10000000", id="bool"),
        pytest.param({"max_size": 2.0}, "max_size: must be an integer in 1..10000000", id="float"),
        pytest.param({"max_size": 0}, "max_size: must be in 1..10000000", id="size-0"),
        pytest.param({"max_size": 10_000_001}, "max_size: must be in 1..10000000", id="size-big"),
        pytest.param({"ttl": 59.99}, "ttl: must be a number of seconds in 60..86400", id="ttl-low"),
        pytest.param({"ttl": 86_400.01}, "ttl: must be a number of seconds in 60..86400",
                     id="ttl-high"),
        pytest.param({"ttl": True}, "ttl: must be a number of seconds in 60..86400", id="ttl-bool"),
        pytest.param({"ttl": "60"}, "ttl: must be a number of seconds in 60..86400", id="ttl-str"),
    ],
)  # fmt: skip
def test_memory_dedup_arguments_are_validated(options, message):
    with pytest.raises(ValidationError) as caught:
        events.MemoryDedup(**options)
    assert caught.value.argument == message.split(":")[0]
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("options", "ttl", "max_size"),
    [
        ({"max_size": 1}, 60.0, 1),
        ({"max_size": 10_000_000}, 60.0, 10_000_000),
        ({"ttl": 60}, 60.0, 100_000),
        ({"ttl": 86_400}, 86_400.0, 100_000),
    ],
)
def test_memory_dedup_accepts_the_range_ends(options, ttl, max_size):
    dedup = events.MemoryDedup(**options)
    assert (dedup.ttl, dedup.max_size) == (ttl, max_size)
    assert type(dedup.ttl) is float


# -- RedisDedup (a real redis-server) ------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.mark.redis
class TestRedisDedup:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # redis-py's asyncio client

    @pytest.fixture
    async def redis(self, redis_server):
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(redis_server.url)
        await client.flushall()
        yield client
        await client.aclose()

    async def test_defaults(self, redis):
        dedup = events.RedisDedup(redis)
        assert (dedup.ttl, dedup.prefix, dedup.timeout) == (60.0, "wxqr:events:dedup", 1.0)
        assert repr(dedup) == "RedisDedup(prefix='wxqr:events:dedup', ttl=60)"
        assert dedup.redis is redis
        assert await dedup.claim("gh_a:k") is True
        assert await redis.get("wxqr:events:dedup:gh_a:k") == b"1"
        assert await redis.ttl("wxqr:events:dedup:gh_a:k") == 60

    async def test_claim_sets_a_prefixed_key_with_the_ttl_rounded_up(self, redis):
        dedup = events.RedisDedup(redis, ttl=90.2, prefix="app1", timeout=5)
        assert repr(dedup) == "RedisDedup(prefix='app1', ttl=90.2)"
        assert dedup.key("x") == "app1:x"
        assert await dedup.claim("x") is True
        assert await dedup.claim("x") is False
        assert [k.decode() for k in await redis.keys("*")] == ["app1:x"]
        assert await redis.get("app1:x") == b"1"
        assert await redis.ttl("app1:x") == 91
        assert type(dedup.timeout) is float

    async def test_release_deletes_the_key(self, redis):
        dedup = events.RedisDedup(redis, prefix="p")
        assert await dedup.claim("x") is True
        assert await dedup.claim("y") is True
        await dedup.release("x")
        await dedup.release("never-claimed")
        assert [k.decode() for k in await redis.keys("*")] == ["p:y"]
        assert await dedup.claim("x") is True

    async def test_a_refused_connection_raises_dedup_error_naming_the_redis_error(self):
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # Nobody listens; no retries, so that the refusal comes at once.
        client = redis.asyncio.Redis(
            host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0)
        )
        dedup = events.RedisDedup(client)
        try:
            for call, verb in ((dedup.claim, "claim"), (dedup.release, "release")):
                with pytest.raises(events.DedupError) as caught:
                    await call("k")
                assert str(caught.value) == f"Redis dedup {verb} failed: ConnectionError"
                assert caught.value.__cause__ is None
                assert caught.value.__suppress_context__
        finally:
            await client.aclose(close_connection_pool=True)

    async def test_a_silent_redis_raises_dedup_error_after_the_timeout(self):
        import redis.asyncio

        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            client = redis.asyncio.Redis(host="127.0.0.1", port=silent.getsockname()[1])
            dedup = events.RedisDedup(client, timeout=0.05)
            try:
                for call, verb in ((dedup.claim, "claim"), (dedup.release, "release")):
                    with pytest.raises(events.DedupError) as caught:
                        await call("k")
                    assert str(caught.value) == f"Redis dedup {verb} took longer than 0.05 s"
                    assert caught.value.__cause__ is None
                    assert caught.value.__suppress_context__
            finally:
                await client.aclose(close_connection_pool=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"timeout": True}, "timeout: must be a number of seconds in (0, 30]",
                     id="timeout-bool"),
        pytest.param({"timeout": "1"}, "timeout: must be a number of seconds in (0, 30]",
                     id="timeout-str"),
        pytest.param({"timeout": 0}, "timeout: must be in (0, 30] seconds", id="timeout-0"),
        pytest.param({"timeout": -1}, "timeout: must be in (0, 30] seconds", id="timeout-neg"),
        pytest.param({"timeout": 30.01}, "timeout: must be in (0, 30] seconds", id="timeout-big"),
        pytest.param({"prefix": ""}, "prefix: must be a non-empty string", id="prefix-empty"),
        pytest.param({"prefix": b"p"}, "prefix: must be a non-empty string", id="prefix-bytes"),
        pytest.param({"ttl": 59}, "ttl: must be a number of seconds in 60..86400", id="ttl-low"),
    ],
)  # fmt: skip
def test_redis_dedup_arguments_are_validated(options, message):
    with pytest.raises(ValidationError) as caught:
        events.RedisDedup(object(), **options)
    assert caught.value.argument == message.split(":")[0]
    assert str(caught.value) == message


def test_redis_dedup_accepts_the_range_ends():
    assert events.RedisDedup(object(), timeout=30).timeout == 30.0
    assert events.RedisDedup(object(), timeout=0.001).timeout == 0.001
    assert events.RedisDedup(object(), ttl=86_400).ttl == 86_400.0


# -- Receiver -------------------------------------------------------------------------------------
NOW = 1714037059


def plain_receiver(**options) -> events.Receiver:
    return events.Receiver(TOKEN, clock=lambda: NOW + 0.9, **options)


def safe_receiver(**options) -> events.Receiver:
    options.setdefault("encoding_aes_key", KEY)
    return events.Receiver(TOKEN, appid=APPID, clock=lambda: NOW + 0.9, **options)


def query(**change) -> dict[str, str]:
    signed = signed_query(timestamp=NOW, nonce=change.pop("nonce", "123456"))
    signed.update(change)
    return signed


def crypto(key: str = KEY, appid: str = APPID) -> events.MessageCrypto:
    return events.MessageCrypto(TOKEN, key, appid)


def records(caplog, level: int = logging.DEBUG) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "wxqr.events" and r.levelno >= level
    ]


class Recorder:
    """A scan handler and an event handler that record what they got and reply ``reply``."""

    def __init__(self, reply: object = None) -> None:
        self.reply = reply
        self.seen: list[events.QrScan | events.Event] = []

    async def __call__(self, push):
        self.seen.append(push)
        return self.reply


@pytest.fixture(autouse=True)
def _no_secret_in_logs(caplog):
    caplog.set_level(logging.DEBUG, "wxqr.events")
    yield
    for record in caplog.records:
        text = record.getMessage() + (caplog.text or "")
        assert TOKEN not in text
        assert KEY not in text
        assert OTHER_KEY not in text


# construction
@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"token": None}, "token: must be a non-empty string (the push Token)",
                     id="token-none"),
        pytest.param({"token": ""}, "token: must be a non-empty string (the push Token)",
                     id="token-empty"),
        pytest.param({"max_body": True}, "max_body: must be an integer in 1..16777216",
                     id="max-body-bool"),
        pytest.param({"max_body": 2.0}, "max_body: must be an integer in 1..16777216",
                     id="max-body-float"),
        pytest.param({"max_body": 0}, "max_body: must be in 1..16777216, got 0", id="max-body-0"),
        pytest.param({"max_body": 16 * 1024 * 1024 + 1},
                     "max_body: must be in 1..16777216, got 16777217", id="max-body-big"),
        pytest.param({"max_skew": True}, "max_skew: must be a number in (0, 86400]",
                     id="skew-bool"),
        pytest.param({"max_skew": "300"}, "max_skew: must be a number in (0, 86400]",
                     id="skew-str"),
        pytest.param({"max_skew": float("nan")}, "max_skew: must be a number in (0, 86400]",
                     id="skew-nan"),
        pytest.param({"max_skew": 0}, "max_skew: must be in (0, 86400], got 0", id="skew-0"),
        pytest.param({"max_skew": 86_400.5}, "max_skew: must be in (0, 86400], got 86400.5",
                     id="skew-big"),
        pytest.param({"reply_deadline": 0}, "reply_deadline: must be in (0, 5], got 0",
                     id="deadline-0"),
        pytest.param({"reply_deadline": -1}, "reply_deadline: must be in (0, 5], got -1",
                     id="deadline-negative"),
        pytest.param({"reply_deadline": 5}, "reply_deadline: must be below WeChat's 5 s timeout",
                     id="deadline-5"),
        pytest.param({"reply_deadline": 5.5}, "reply_deadline: must be in (0, 5], got 5.5",
                     id="deadline-over-5"),
        pytest.param({"shutdown_grace": -0.5}, "shutdown_grace: must be in (0, 3600], got -0.5",
                     id="grace-negative"),
        pytest.param({"shutdown_grace": 3600.5},
                     "shutdown_grace: must be in (0, 3600], got 3600.5", id="grace-big"),
        pytest.param({"shutdown_grace": None}, "shutdown_grace: must be a number in (0, 3600]",
                     id="grace-none"),
        pytest.param({"previous_aes_key": KEY, "appid": APPID},
                     "previous_aes_key: needs encoding_aes_key (the current key)",
                     id="previous-alone"),
        pytest.param({"encoding_aes_key": KEY}, "appid: is required with encoding_aes_key",
                     id="no-appid"),
        pytest.param({"encoding_aes_key": KEY, "appid": ""},
                     "appid: is required with encoding_aes_key", id="empty-appid"),
        pytest.param({"encoding_aes_key": KEY[:-1], "appid": APPID},
                     "encoding_aes_key: must be 43 characters from A-Z, a-z, 0-9", id="bad-key"),
        pytest.param({"encoding_aes_key": KEY, "previous_aes_key": KEY[:-1] + "!", "appid": APPID},
                     "previous_aes_key: must be 43 characters from A-Z, a-z, 0-9",
                     id="bad-previous"),
    ],
)  # fmt: skip
def test_receiver_arguments_are_validated_with_their_names_and_ranges(options, message):
    options = {"token": TOKEN, **options}
    token = options.pop("token")
    with pytest.raises(ValidationError) as caught:
        events.Receiver(token, **options)
    assert (caught.value.argument, str(caught.value)) == (message.split(":")[0], message)


def test_receiver_defaults_and_range_ends():
    receiver = events.Receiver(TOKEN)
    assert (receiver.max_skew, receiver.max_body, receiver.reply_deadline) == (300.0, 65536, 4.5)
    assert receiver.shutdown_grace == 10.0
    assert receiver.appid is None
    assert isinstance(receiver.dedup, events.MemoryDedup)
    assert repr(receiver) == "Receiver(appid=None, mode='plaintext')"
    edges = events.Receiver(
        TOKEN, max_skew=86_400, max_body=16 * 1024 * 1024, reply_deadline=4.99, shutdown_grace=0
    )
    assert (edges.max_skew, edges.max_body, edges.reply_deadline) == (86_400.0, 16777216, 4.99)
    assert edges.shutdown_grace == 0.0
    assert type(edges.max_skew) is type(edges.shutdown_grace) is float
    assert events.Receiver(TOKEN, max_body=1, shutdown_grace=3600).shutdown_grace == 3600.0
    assert events.Receiver(TOKEN, max_skew=None).max_skew is None
    rotated = safe_receiver(previous_aes_key=OTHER_KEY)
    assert repr(rotated) == f"Receiver(appid={APPID!r}, mode='aes')"
    assert rotated.appid == APPID
    dedup = events.MemoryDedup()
    assert events.Receiver(TOKEN, dedup=dedup).dedup is dedup


async def test_the_default_max_skew_accepts_300_s_and_refuses_more():
    for offset, status in ((300, 200), (-300, 200), (301, 403), (-301, 403)):
        receiver = events.Receiver(TOKEN, clock=lambda offset=offset: NOW + offset)
        answer = await receiver.handle("GET", query(echostr="e"), b"")
        assert answer.status == status, offset


async def test_a_stale_timestamp_is_refused_with_the_skew_in_the_message(caplog):
    receiver = plain_receiver(max_skew=60)  # the clock reads NOW + 0.9
    signed = signed_query(timestamp=NOW - 61)
    answer = await receiver.handle("GET", {**signed, "echostr": "e"}, b"")
    assert answer.status == 403
    assert str(answer.error) == "timestamp is 62 s off (max_skew; a replay?) (code -40001)"
    assert ("WARNING", f"push refused: SignatureError: {answer.error}") in records(caplog)
    signed = signed_query(timestamp=NOW - 60)  # 60.9 s off: over 60
    assert (await receiver.handle("GET", {**signed, "echostr": "e"}, b"")).status == 403
    exact = events.Receiver(TOKEN, max_skew=60, clock=lambda: NOW + 60)
    assert (await exact.handle("GET", {**query(), "echostr": "e"}, b"")).status == 200


async def test_a_timestamp_that_is_not_an_integer():
    signed = {**signed_query(timestamp=0), "echostr": "e"}
    stamp = "17e8"
    signed.update(timestamp=stamp, signature=sha1_sorted(TOKEN, stamp, signed["nonce"]))
    answer = await plain_receiver().handle("GET", signed, b"")
    assert answer.status == 403
    assert str(answer.error) == "timestamp is not an integer (code -40001)"
    # Without the skew check the timestamp is only signed, never read.
    answer = await events.Receiver(TOKEN, max_skew=None).handle("GET", signed, b"")
    assert (answer.status, answer.body) == (200, b"e")


@pytest.mark.parametrize("missing", ["timestamp", "nonce", "signature"])
async def test_a_query_without_a_signature_part_is_refused(missing):
    signed = query(echostr="e")
    del signed[missing]
    answer = await plain_receiver().handle("GET", signed, b"")
    assert (answer.status, answer.body, answer.content_type) == (
        403,
        b"forbidden",
        "text/plain; charset=utf-8",
    )
    assert isinstance(answer.error, events.SignatureError)
    assert str(answer.error) == "signature, timestamp or nonce missing from the query (code -40001)"


async def test_a_repeated_query_parameter_counts_as_absent():
    signed = query(echostr="e")
    signed["signature"] = [signed["signature"]] * 2
    answer = await plain_receiver().handle("GET", signed, b"")
    assert answer.status == 403
    assert "missing" in str(answer.error)


async def test_a_wrong_signature_is_refused():
    answer = await plain_receiver().handle("GET", query(echostr="e", signature="0" * 40), b"")
    assert str(answer.error) == "signature does not match (code -40001)"


async def test_url_verification_echoes_echostr_as_utf8_text():
    answer = await plain_receiver().handle("get", query(echostr="回声 1"), b"")
    assert answer == events.Answer(200, "text/plain; charset=utf-8", "回声 1".encode())
    assert answer.error is None
    answer = await plain_receiver().handle("GET", query(), b"")
    assert (answer.status, answer.body) == (400, b"bad request")
    assert str(answer.error) == "URL verification without echostr (code -40002)"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "get2"])
async def test_other_methods_are_refused_first(method):
    # Before the size and the signature are looked at.
    receiver = plain_receiver(max_body=10)
    answer = await receiver.handle(method, {}, b"x" * 100)
    assert answer == events.Answer(405, "text/plain; charset=utf-8", b"method not allowed")
    assert answer.error is None


async def test_an_oversized_body_is_refused_before_the_signature():
    receiver = plain_receiver(max_body=10)
    answer = await receiver.handle("POST", {}, b"x" * 11)
    assert (answer.status, answer.body) == (413, b"payload too large")
    assert isinstance(answer.error, events.MalformedMessage)
    assert str(answer.error) == "body over max_body (10 bytes) (code -40002)"
    answer = await receiver.handle("POST", {}, b"x" * 10)
    assert answer.status == 403


async def test_handle_checks_its_argument_types():
    receiver = plain_receiver()
    for args, message in (
        ((b"POST", {}, b""), "method: must be a str such as 'GET' or 'POST'"),
        (("POST", [("a", "b")], b""), "query: must be a mapping of query parameter -> str"),
        (("POST", {}, 5), "body: must be bytes, got int"),
        (("POST", {}, None), "body: must be bytes, got NoneType"),
    ):
        with pytest.raises(ValidationError) as caught:
            await receiver.handle(*args)
        assert (caught.value.argument, str(caught.value)) == (message.split(":")[0], message)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda b: b.decode(), id="str"),
        pytest.param(bytearray, id="bytearray"),
        pytest.param(memoryview, id="memoryview"),
    ],
)
async def test_a_body_may_be_str_bytearray_or_memoryview(body):
    receiver = plain_receiver()
    handler = Recorder()
    receiver.on_scan(handler)
    answer = await receiver.handle("POST", query(), body(event_xml("SCAN", "场景").encode()))
    assert (answer.status, answer.body) == (200, b"success")
    assert [s.scene for s in handler.seen] == ["场景"]


# de-duplication keys
def _digest(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def test_dedup_key_of_an_event_hashes_its_identity_under_the_account():
    scan = events.parse(event_xml("SCAN", "42", "T-1", create_time=1700000000))
    expected = _digest("evt", OPENID, "1700000000", "SCAN", "42", "T-1")
    assert events.dedup_key(scan) == f"{ACCOUNT}:{expected}"
    follow = events.parse(event_xml("subscribe", None, None, create_time=5))
    assert (
        events.dedup_key(follow) == f"{ACCOUNT}:{_digest('evt', OPENID, '5', 'subscribe', '', '')}"
    )


def test_dedup_key_of_a_message_is_its_msg_id():
    text = (
        f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content>"
        "<MsgId> 1234567890123456 </MsgId></xml>"
    )
    assert events.dedup_key(events.parse(text)) == f"{ACCOUNT}:{_digest('msg', '1234567890123456')}"
    blank = text.replace("<MsgId> 1234567890123456 </MsgId>", "<MsgId>  </MsgId>")
    expected = _digest("evt", OPENID, "1", "", "", "")
    assert events.dedup_key(events.parse(blank)) == f"{ACCOUNT}:{expected}"


# replies
async def test_a_text_reply_in_xml_is_exactly_the_passive_reply_format():
    receiver = plain_receiver()
    receiver.on_scan(Recorder("hi ]]> <b>&"))
    answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert answer == events.Answer(
        200,
        "application/xml; charset=utf-8",
        (
            f"<xml><ToUserName><![CDATA[{OPENID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{ACCOUNT}]]></FromUserName>"
            f"<CreateTime>{NOW}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            "<Content><![CDATA[hi ]]]]><![CDATA[> <b>&]]></Content></xml>"
        ).encode(),
    )
    assert answer.error is None


async def test_a_text_reply_in_json_is_compact_utf8():
    receiver = plain_receiver()
    receiver.on_scan(Recorder('欢迎 "x"'))
    answer = await receiver.handle("POST", query(), event_json("SCAN", "1").encode())
    assert answer == events.Answer(
        200,
        "application/json; charset=utf-8",
        (
            f'{{"ToUserName":"{OPENID}","FromUserName":"{ACCOUNT}","CreateTime":{NOW},'
            '"MsgType":"text","Content":"欢迎 \\"x\\""}'
        ).encode(),
    )


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_an_encrypted_reply_is_sealed_with_the_key_that_opened_the_push(fmt):
    import json
    import re

    receiver = safe_receiver(encoding_aes_key=OTHER_KEY, previous_aes_key=KEY)
    receiver.on_scan(Recorder("sealed"))
    plaintext = event_xml("SCAN", "9") if fmt == "xml" else event_json("SCAN", "9")
    push_query, body = encrypted_push(crypto(KEY), plaintext, fmt=fmt, nonce="n-1", timestamp=NOW)
    answer = await receiver.handle("POST", push_query, body)
    assert (answer.status, answer.content_type) == (200, f"application/{fmt}; charset=utf-8")
    if fmt == "json":
        sealed = json.loads(answer.body)
        assert list(sealed) == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
        assert (sealed["TimeStamp"], sealed["Nonce"]) == (NOW, "n-1")
    else:
        match = re.fullmatch(
            rb"<xml><Encrypt><!\[CDATA\[([A-Za-z0-9+/=]+)\]\]></Encrypt>"
            rb"<MsgSignature><!\[CDATA\[([0-9a-f]{40})\]\]></MsgSignature>"
            rb"<TimeStamp>(\d+)</TimeStamp><Nonce><!\[CDATA\[n-1\]\]></Nonce></xml>",
            answer.body,
        )
        assert match is not None, answer.body
        sealed = {
            "Encrypt": match[1].decode(),
            "MsgSignature": match[2].decode(),
            "TimeStamp": int(match[3]),
        }
        assert sealed["TimeStamp"] == NOW
    inner = crypto(KEY).decrypt(
        sealed["Encrypt"],
        msg_signature=sealed["MsgSignature"],
        timestamp=str(sealed["TimeStamp"]),
        nonce="n-1",
    )
    if fmt == "xml":
        assert inner == (
            f"<xml><ToUserName><![CDATA[{OPENID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{ACCOUNT}]]></FromUserName><CreateTime>{NOW}</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[sealed]]></Content></xml>"
        )
    else:
        assert inner == (
            f'{{"ToUserName":"{OPENID}","FromUserName":"{ACCOUNT}","CreateTime":{NOW},'
            '"MsgType":"text","Content":"sealed"}'
        )


@pytest.mark.parametrize("reply", [None, "", 5, b"bytes"])
async def test_a_handler_that_returns_no_text_is_answered_success(reply):
    receiver = plain_receiver()
    receiver.on_scan(Recorder(reply))
    answer = await receiver.handle("POST", query(), event_xml().encode())
    assert answer == events.Answer(200, "text/plain; charset=utf-8", b"success")


# encrypted pushes
async def test_encrypt_type_is_case_insensitive_and_an_encrypt_field_alone_means_aes():
    receiver = safe_receiver()
    handler = Recorder()
    receiver.on_scan(handler)
    push_query, body = encrypted_push(crypto(), event_xml("SCAN", "a"), timestamp=NOW)
    assert (
        await receiver.handle("POST", {**push_query, "encrypt_type": "AES"}, body)
    ).status == 200
    push_query, body = encrypted_push(crypto(), event_xml("SCAN", "b"), timestamp=NOW)
    del push_query["encrypt_type"]
    assert (await receiver.handle("POST", push_query, body)).status == 200
    push_query, body = encrypted_push(crypto(), event_xml("SCAN", "c"), timestamp=NOW)
    assert (
        await receiver.handle("POST", {**push_query, "encrypt_type": "raw"}, body)
    ).status == 200
    assert [s.scene for s in handler.seen] == ["a", "b", "c"]


async def test_encrypted_push_refusals_name_the_check_that_failed():
    handler = Recorder()
    receiver = safe_receiver()
    receiver.on_scan(handler)
    push_query, body = encrypted_push(crypto(), event_xml(), timestamp=NOW)
    cases = [
        (receiver, {**push_query, "msg_signature": None}, body, 403,
         "encrypted push without msg_signature (code -40001)"),
        (receiver, push_query, f"<xml><ToUserName>{ACCOUNT}</ToUserName><Encrypt/></xml>".encode(),
         400,
         "encrypt_type=aes but the body has no Encrypt field (code -40002)"),
        (plain_receiver(), push_query, body, 400,
         "encrypted push, but no encoding_aes_key is configured (code -40004)"),
    ]  # fmt: skip
    for target, push, data, status, message in cases:
        push = {k: v for k, v in push.items() if v is not None}
        answer = await target.handle("POST", push, data)
        assert (answer.status, str(answer.error)) == (status, message)
    assert handler.seen == []


@pytest.mark.parametrize(
    ("current", "previous", "sealed_with", "appid", "error", "message"),
    [
        pytest.param(OTHER_KEY, KEY, KEY, "wx0000000000000000", events.AppIdMismatch,
                     "the decrypted frame names another appid (code -40005)",
                     id="previous-key-names-another-appid"),
        pytest.param(KEY, OTHER_KEY, KEY, "wx0000000000000000", events.AppIdMismatch,
                     "the decrypted frame names another appid (code -40005)",
                     id="current-key-names-another-appid"),
        pytest.param(KEY, None, "B" * 43, APPID, events.DecryptError,
                     "bad PKCS#7 padding (wrong key?) (code -40008)", id="one-wrong-key"),
    ],
)  # fmt: skip
async def test_key_rotation_reports_the_most_telling_failure(
    current, previous, sealed_with, appid, error, message
):
    receiver = safe_receiver(encoding_aes_key=current, previous_aes_key=previous)
    handler = Recorder()
    receiver.on_scan(handler)
    push_query, body = encrypted_push(crypto(sealed_with, appid), event_xml(), timestamp=NOW)
    answer = await receiver.handle("POST", push_query, body)
    assert (answer.status, answer.body) == (400, b"bad request")
    assert type(answer.error) is error
    assert str(answer.error) == message
    assert handler.seen == []


# registration and dispatch
def test_registration_returns_the_handler_and_checks_the_name():
    receiver = plain_receiver()
    handler = Recorder()
    assert receiver.on_scan(handler) is handler
    assert receiver.on("SCAN")(handler) is handler
    for name in ("", None, 5):
        with pytest.raises(ValidationError) as caught:
            receiver.on(name)
        assert str(caught.value) == "name: must be a non-empty Event or MsgType name"


async def test_event_names_match_case_insensitively_and_the_last_registration_wins():
    receiver = plain_receiver()
    first, second, location = Recorder("first"), Recorder("second"), Recorder()
    receiver.on("UnSubscribe")(first)
    receiver.on("unsubscribe")(second)
    receiver.on("location")(location)
    await receiver.handle("POST", query(), event_xml("unsubscribe", None, None).encode())
    await receiver.handle("POST", query(), event_xml("LOCATION", None, None).encode())
    assert first.seen == []
    assert [e.name for e in second.seen] == ["unsubscribe"]
    assert [e.name for e in location.seen] == ["LOCATION"]
    scans = [Recorder("one"), Recorder("two")]
    for scan in scans:
        receiver.on_scan(scan)
    answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert b"<Content><![CDATA[two]]></Content>" in answer.body
    assert scans[0].seen == []


@pytest.mark.parametrize(
    ("push", "registered", "name"),
    [
        pytest.param(event_xml("subscribe", "qrscene_7", "T", create_time=77), "SUBSCRIBE",
                     "subscribe", id="follow-by-scan"),
        pytest.param(event_xml("SCAN", "7", "T", create_time=77), "scan", "SCAN", id="scan"),
        pytest.param(event_xml("scan", "7", "T", create_time=77), "SCAN", "scan",
                     id="scan-as-sent"),
        pytest.param(event_xml("Subscribe", "qrscene_7", "T", create_time=77), "subscribe",
                     "Subscribe", id="follow-as-sent"),
    ],
)  # fmt: skip
async def test_without_a_scan_handler_a_scan_is_the_event_it_arrived_as(push, registered, name):
    receiver = plain_receiver()
    handler = Recorder("as event")
    receiver.on(registered)(handler)
    answer = await receiver.handle("POST", query(), push.encode())
    assert b"<Content><![CDATA[as event]]></Content>" in answer.body
    (event,) = handler.seen
    assert type(event) is events.Event
    assert (event.name, event.openid, event.create_time, event.account) == (
        name,
        OPENID,
        77,
        ACCOUNT,
    )
    assert event.raw["Ticket"] == "T"


async def test_a_push_nobody_handles_is_answered_success_without_a_dedup_claim():
    dedup = events.MemoryDedup()
    receiver = plain_receiver(dedup=dedup)
    receiver.on("unsubscribe")(Recorder())
    answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert answer == events.Answer(200, "text/plain; charset=utf-8", b"success")
    assert len(dedup) == 0


@pytest.mark.parametrize(
    ("push", "name"),
    [
        pytest.param(event_xml("subscribe", "qrscene_1"), "subscribe scan", id="subscribe"),
        pytest.param(event_xml("SCAN", "1"), "SCAN", id="scan"),
        pytest.param(event_xml("LOCATION", None, None), "LOCATION", id="event"),
    ],
)
async def test_a_duplicate_is_answered_success_without_the_handler(push, name, caplog):
    dedup = events.MemoryDedup()
    receiver = plain_receiver(dedup=dedup)
    handler = Recorder("reply")
    receiver.on_scan(handler)
    receiver.on("location")(handler)
    first = await receiver.handle("POST", query(nonce="1"), push.encode())
    assert first.status == 200
    assert len(dedup) == 1
    caplog.clear()
    again = await receiver.handle("POST", query(nonce="2"), push.encode())
    assert again == events.Answer(200, "text/plain; charset=utf-8", b"success")
    assert len(handler.seen) == 1
    assert records(caplog) == [
        ("INFO", f"duplicate delivery of a {name} push answered without its handler")
    ]


class FailingDedup:
    """A dedup store whose claim and/or release fail."""

    def __init__(self, *, claim: bool = True, release: bool = True) -> None:
        self.fail_claim, self.fail_release = claim, release
        self.released: list[str] = []

    async def claim(self, key: str) -> bool:
        if self.fail_claim:
            raise events.DedupError("claim broke")
        return True

    async def release(self, key: str) -> None:
        self.released.append(key)
        if self.fail_release:
            raise events.DedupError("release broke")


async def test_a_failing_dedup_store_does_not_lose_the_scan(caplog):
    receiver = plain_receiver(dedup=FailingDedup())
    handler = Recorder("still here")
    receiver.on_scan(handler)
    answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert b"still here" in answer.body
    assert len(handler.seen) == 1
    assert ("WARNING", "dedup store failed (claim broke); handling the push anyway") in records(
        caplog
    )


async def test_a_raising_handler_answers_500_and_releases_its_key(caplog):
    dedup = events.MemoryDedup()
    receiver = plain_receiver(dedup=dedup)

    async def broken(scan):
        raise RuntimeError("db down")

    receiver.on_scan(broken)
    answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert answer == events.Answer(500, "text/plain; charset=utf-8", b"internal error")
    assert answer.error is None
    assert len(dedup) == 0
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == "the SCAN handler raised; answered 500 so that WeChat resends"
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_a_failing_release_is_logged_and_the_answer_is_still_500(caplog):
    dedup = FailingDedup(claim=False)
    receiver = plain_receiver(dedup=dedup)

    async def broken(scan):
        raise RuntimeError("db down")

    receiver.on_scan(broken)
    scan = events.parse(event_xml("SCAN", "1"))
    answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert answer.status == 500
    assert dedup.released == [events.dedup_key(scan)]
    assert ("WARNING", "dedup store failed to release a key (release broke)") in records(caplog)


async def test_an_unopened_receiver_warns_once(caplog):
    receiver = plain_receiver()
    receiver.on_scan(Recorder("inline"))
    for nonce in ("1", "2"):
        answer = await receiver.handle("POST", query(), event_xml("SCAN", nonce).encode())
        assert b"inline" in answer.body
    assert records(caplog, logging.WARNING) == [
        (
            "WARNING",
            "Receiver not opened (async with receiver / ASGI lifespan): handlers run inline and "
            "a slow one delays the answer past reply_deadline",
        )
    ]


# the task group: reply_deadline and shutdown_grace
class Gate:
    """A handler that waits until released, then replies (or raises)."""

    def __init__(self, reply: str | None = "late", error: Exception | None = None) -> None:
        import anyio

        self.go, self.finished = anyio.Event(), anyio.Event()
        self.reply, self.error = reply, error
        self.started = 0

    async def __call__(self, push):
        self.started += 1
        try:
            await self.go.wait()
        finally:
            self.finished.set()
        if self.error is not None:
            raise self.error
        return self.reply


async def test_an_open_receiver_sends_a_reply_that_comes_in_time():
    receiver = plain_receiver(reply_deadline=4.9)
    receiver.on_scan(Recorder("in time"))
    async with receiver:
        answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert b"<Content><![CDATA[in time]]></Content>" in answer.body


async def test_past_the_deadline_the_answer_is_success_and_the_handler_continues(caplog):
    import anyio

    dedup = events.MemoryDedup()
    receiver = plain_receiver(reply_deadline=0.05, dedup=dedup)
    gate = Gate(reply="never sent")
    receiver.on_scan(gate)
    async with receiver:
        with anyio.fail_after(5):
            answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
        assert answer == events.Answer(200, "text/plain; charset=utf-8", b"success")
        assert not gate.finished.is_set()
        gate.go.set()
    assert gate.finished.is_set()
    assert len(dedup) == 1  # it completed: the key stays claimed
    assert records(caplog, logging.WARNING) == [
        (
            "WARNING",
            "a handler is still running after reply_deadline (0.1 s): answered success, it "
            "continues in the background",
        )
    ]


async def test_a_handler_failing_after_the_deadline_is_logged_and_released(caplog):
    import anyio

    dedup = events.MemoryDedup()
    receiver = plain_receiver(reply_deadline=0.05, dedup=dedup)
    gate = Gate(error=ValueError("late boom"))
    receiver.on_scan(gate)
    async with receiver:
        with anyio.fail_after(5):
            answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
        assert answer.body == b"success"
        gate.go.set()
    assert len(dedup) == 0
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == "a handler failed after the reply deadline"
    assert isinstance(record.exc_info[1], ValueError)


async def test_a_handler_failing_in_time_is_not_logged_as_late(caplog):
    receiver = plain_receiver(reply_deadline=4.9)
    gate = Gate(error=ValueError("boom"))
    gate.go.set()
    receiver.on_scan(gate)
    async with receiver:
        answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert answer.status == 500
    assert [m for _, m in records(caplog, logging.ERROR)] == [
        "the SCAN handler raised; answered 500 so that WeChat resends"
    ]


async def test_closing_waits_for_handlers_within_shutdown_grace():
    import anyio

    receiver = plain_receiver(reply_deadline=0.05, shutdown_grace=5)
    done: list[str] = []

    async def slowish(scan):
        await anyio.sleep(0.15)
        done.append(scan.scene)

    receiver.on_scan(slowish)
    async with receiver:
        assert (await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())).body == (
            b"success"
        )
        assert done == []
    assert done == ["1"]


async def test_closing_cancels_handlers_past_the_grace_and_releases_their_keys(caplog):
    import anyio

    dedup = events.MemoryDedup()
    receiver = plain_receiver(reply_deadline=0.05, shutdown_grace=0, dedup=dedup)
    gate = Gate()
    receiver.on_scan(gate)
    with anyio.fail_after(5):
        async with receiver:
            await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
            assert len(dedup) == 1
    assert gate.finished.is_set()
    assert not gate.go.is_set()
    assert len(dedup) == 0  # cancelled: WeChat's resend will run it
    # ... and the receiver can be opened again.
    gate2 = Gate()
    gate2.go.set()
    receiver.on_scan(gate2)
    async with receiver:
        answer = await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
    assert b"late" in answer.body
    assert gate2.started == 1


async def test_a_receiver_opens_once_and_closing_an_unopened_one_is_a_no_op():
    receiver = plain_receiver()
    await receiver.__aexit__(None, None, None)
    async with receiver as opened:
        assert opened is receiver
        with pytest.raises(RuntimeError, match=r"^this Receiver is already open$"):
            await receiver.__aenter__()
    with pytest.raises(KeyError):  # the block's own exception, not an ExceptionGroup
        async with receiver:
            raise KeyError("mine")


async def test_a_request_cancelled_while_waiting_leaves_the_handler_running(caplog):
    import anyio

    dedup = events.MemoryDedup()
    receiver = plain_receiver(reply_deadline=4.9, dedup=dedup)
    gate = Gate(error=ValueError("after the client left"))
    receiver.on_scan(gate)
    async with receiver:
        with anyio.move_on_after(0.05):
            await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
        assert gate.started == 1
        assert not gate.finished.is_set()
        gate.go.set()
    assert len(dedup) == 0
    assert [m for _, m in records(caplog, logging.ERROR)] == [
        "a handler failed after the reply deadline"
    ]


def test_the_asgi_app_is_one_object_per_receiver():
    receiver = plain_receiver()
    app = receiver.asgi_app
    assert app is receiver.asgi_app
    assert app.receiver is receiver
    assert repr(app) == "<asgi_app of Receiver(appid=None, mode='plaintext')>"


# -- the ASGI adapter, called directly -----------------------------------------------------------
class ASGI:
    """Drive an ASGI app: the messages it receives, and those it sends."""

    def __init__(self, *incoming) -> None:
        self.incoming = list(incoming)
        self.sent: list[dict] = []
        self.received = 0

    async def receive(self):
        self.received += 1
        return self.incoming.pop(0)

    async def send(self, message):
        self.sent.append(message)


def http_scope(method: str = "POST", query_string: bytes | None = None) -> dict:
    from urllib.parse import urlencode

    scope = {"type": "http", "method": method}
    scope["query_string"] = urlencode(query()).encode() if query_string is None else query_string
    return scope


def body_messages(*chunks: bytes) -> list[dict]:
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


async def test_asgi_answers_with_status_content_type_length_and_body():
    receiver = plain_receiver()
    receiver.on_scan(Recorder("hi"))
    body = event_xml("SCAN", "1").encode()
    asgi = ASGI(*body_messages(body[:10], b"", body[10:]))
    await receiver.asgi_app(http_scope(), asgi.receive, asgi.send)
    start, sent = asgi.sent
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert start["headers"] == [
        (b"content-type", b"application/xml; charset=utf-8"),
        (b"content-length", str(len(sent["body"])).encode()),
    ]
    assert sent["type"] == "http.response.body"
    assert b"<Content><![CDATA[hi]]></Content>" in sent["body"]


async def test_asgi_reads_at_most_max_body_plus_one_bytes():
    receiver = plain_receiver(max_body=10)
    asgi = ASGI(*body_messages(b"x" * 5, b"x" * 6, b"never read"))  # 11 bytes: enough
    await receiver.asgi_app(http_scope(), asgi.receive, asgi.send)
    assert asgi.received == 2
    assert asgi.sent[0]["status"] == 413
    assert asgi.sent[1]["body"] == b"payload too large"
    # Exactly max_body bytes are read whole and handled.
    receiver = plain_receiver(max_body=10)
    asgi = ASGI(*body_messages(b"x" * 4, b"x" * 6))
    await receiver.asgi_app(http_scope(), asgi.receive, asgi.send)
    assert asgi.sent[0]["status"] == 400  # read, then refused as neither XML nor JSON


async def test_asgi_a_cut_body_is_refused_as_too_large_not_handled():
    receiver = plain_receiver(max_body=len(event_xml("SCAN", "1")))
    handler = Recorder()
    receiver.on_scan(handler)
    body = event_xml("SCAN", "1").encode()
    asgi = ASGI(*body_messages(body + b"  ", b"more"))
    await receiver.asgi_app(http_scope(), asgi.receive, asgi.send)
    assert asgi.sent[0]["status"] == 413
    assert handler.seen == []


async def test_asgi_a_body_message_without_body_counts_as_empty():
    receiver = plain_receiver(max_body=3)
    asgi = ASGI({"type": "http.request"})
    scope = http_scope("GET", f"{_qs(query(echostr='e'))}".encode())
    await receiver.asgi_app(scope, asgi.receive, asgi.send)
    assert (asgi.sent[0]["status"], asgi.sent[1]["body"]) == (200, b"e")


def _qs(params) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


async def test_asgi_query_first_values_blank_values_and_no_query_string():
    receiver = plain_receiver()
    signed = query()
    raw = _qs(signed) + "&echostr=&echostr=second&signature=" + "0" * 40
    asgi = ASGI({"type": "http.request", "body": b""})
    await receiver.asgi_app(http_scope("GET", raw.encode()), asgi.receive, asgi.send)
    assert (asgi.sent[0]["status"], asgi.sent[1]["body"]) == (200, b"")  # the blank echostr
    asgi = ASGI({"type": "http.request", "body": b""})
    await receiver.asgi_app({"type": "http", "method": "GET"}, asgi.receive, asgi.send)
    assert asgi.sent[0]["status"] == 403
    echostr = "caf\xe9 %"
    asgi = ASGI({"type": "http.request", "body": b""})
    raw = (_qs({**signed, "echostr": echostr})).encode()
    await receiver.asgi_app(http_scope("GET", raw), asgi.receive, asgi.send)
    assert asgi.sent[1]["body"] == echostr.encode()
    # A raw (not percent-encoded) non-ASCII byte is read as Latin-1, not refused.
    asgi = ASGI({"type": "http.request", "body": b""})
    raw = _qs(signed).encode() + b"&echostr=caf\xe9"
    await receiver.asgi_app(http_scope("GET", raw), asgi.receive, asgi.send)
    assert (asgi.sent[0]["status"], asgi.sent[1]["body"]) == (200, "café".encode())


async def test_asgi_a_client_that_disconnects_gets_nothing():
    receiver = plain_receiver()
    handler = Recorder()
    receiver.on_scan(handler)
    asgi = ASGI(*body_messages(b"<xml>", b""), {"type": "http.disconnect"})
    asgi.incoming[1]["more_body"] = True
    await receiver.asgi_app(http_scope(), asgi.receive, asgi.send)
    assert asgi.sent == []
    assert handler.seen == []


async def test_asgi_websockets_are_closed_and_other_scopes_ignored():
    receiver = plain_receiver()
    asgi = ASGI()
    await receiver.asgi_app({"type": "websocket"}, asgi.receive, asgi.send)
    assert asgi.sent == [{"type": "websocket.close", "code": 1003}]
    asgi = ASGI()
    await receiver.asgi_app({"type": "something"}, asgi.receive, asgi.send)
    assert (asgi.sent, asgi.received) == ([], 0)


async def test_asgi_lifespan_opens_and_closes_the_receiver():
    import anyio

    receiver = plain_receiver(reply_deadline=0.05)
    gate = Gate()
    receiver.on_scan(gate)
    startup = ASGI()
    lifespan_sent = startup.sent

    async def post(scene: str):
        asgi = ASGI(*body_messages(event_xml("SCAN", scene).encode()))
        with anyio.fail_after(5):
            await receiver.asgi_app(http_scope(), asgi.receive, asgi.send)
        return asgi.sent[1]["body"]

    # Drive the lifespan by hand: startup, one request, shutdown.
    shutdown = anyio.Event()
    messages = [{"type": "lifespan.startup"}]

    async def receive():
        if messages:
            return messages.pop(0)
        await shutdown.wait()
        return {"type": "lifespan.shutdown"}

    async with anyio.create_task_group() as tg:
        tg.start_soon(receiver.asgi_app, {"type": "lifespan"}, receive, startup.send)
        with anyio.fail_after(5):
            while not lifespan_sent:
                await anyio.sleep(0.01)
        assert lifespan_sent == [{"type": "lifespan.startup.complete"}]
        assert await post("1") == b"success"  # answered at the deadline: the group is open
        gate.go.set()
        shutdown.set()
    assert lifespan_sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
    assert gate.finished.is_set()
    async with receiver:  # the lifespan closed it: it can be opened again
        pass
    # Closed again: a new handler runs inline (no background group).
    receiver.on_scan(Recorder("inline"))
    assert b"inline" in await post("2")


async def test_asgi_lifespan_leaves_a_receiver_the_application_opened_alone():
    receiver = plain_receiver()
    async with receiver:
        asgi = ASGI({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
        await receiver.asgi_app({"type": "lifespan"}, asgi.receive, asgi.send)
        assert [m["type"] for m in asgi.sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        with pytest.raises(RuntimeError):  # still open: the lifespan did not close it
            await receiver.__aenter__()
    asgi = ASGI({"type": "lifespan.shutdown"})  # a shutdown without startup closes nothing
    await receiver.asgi_app({"type": "lifespan"}, asgi.receive, asgi.send)
    assert asgi.sent == [{"type": "lifespan.shutdown.complete"}]


async def test_asgi_lifespan_closes_only_what_it_opened_in_the_same_cycle():
    receiver = plain_receiver()
    cycle = ASGI({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    await receiver.asgi_app({"type": "lifespan"}, cycle.receive, cycle.send)
    async with receiver:  # later, the application opens it itself...
        later = ASGI({"type": "lifespan.shutdown"})
        await receiver.asgi_app({"type": "lifespan"}, later.receive, later.send)
        with pytest.raises(RuntimeError):  # ...and a later lifespan shutdown leaves it open
            await receiver.__aenter__()


async def test_asgi_lifespan_reports_a_receiver_that_fails_to_open():
    class Failing(events.Receiver):  # e.g. a subclass that opens its own resources
        async def __aenter__(self):
            raise OSError("no database")

    receiver = Failing(TOKEN)
    asgi = ASGI({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    await receiver.asgi_app({"type": "lifespan"}, asgi.receive, asgi.send)
    assert asgi.sent == [{"type": "lifespan.startup.failed", "message": "no database"}]
    assert asgi.received == 1


async def test_asgi_lifespan_ignores_unknown_messages():
    receiver = plain_receiver()
    asgi = ASGI({"type": "lifespan.other"}, {"type": "lifespan.shutdown"})
    await receiver.asgi_app({"type": "lifespan"}, asgi.receive, asgi.send)
    assert asgi.sent == [{"type": "lifespan.shutdown.complete"}]


# -- the aiohttp adapter, on a real socket -------------------------------------------------------
@pytest.fixture
async def aiohttp_server():
    """Serve receivers with aiohttp; yields ``start(receiver) -> (host, port)``."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    servers = []

    async def start(receiver):
        app = web.Application()
        app.router.add_route("*", "/wechat", receiver.aiohttp_handler)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return server.host, server.port

    yield start
    for server in servers:
        await server.close()


async def raw_request(address, head: bytes, body: bytes = b"") -> tuple[int, dict, bytes]:
    """One HTTP/1.1 exchange over a plain socket (to send what httpx would not)."""
    import asyncio

    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(head + body)
        await writer.drain()
        with_timeout = asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        status_line, *header_lines = (await with_timeout).decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines if line)
        content = await asyncio.wait_for(reader.readexactly(int(headers["Content-Length"])), 2)
        return int(status_line.split()[1]), headers, content
    finally:
        writer.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiohttp_refuses_a_declared_oversize_without_waiting_for_the_body(aiohttp_server):
    receiver = plain_receiver(max_body=100)
    address = await aiohttp_server(receiver)
    path = "/wechat?" + _qs(query())
    # Content-Length max_body + 1, and no body sent: refused at once, not after reading it.
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n".encode()
    status, headers, content = await raw_request(address, head)
    assert (status, content) == (413, b"payload too large")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiohttp_reads_declared_and_chunked_bodies(aiohttp_server):
    import httpx

    receiver = plain_receiver(max_body=len(event_xml("SCAN", "1")))
    handler = Recorder("hello")
    receiver.on_scan(handler)
    host, port = await aiohttp_server(receiver)
    body = event_xml("SCAN", "1").encode()

    async def chunked(data: bytes, size: int = 7):
        for i in range(0, len(data), size):
            yield data[i : i + size]

    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        answer = await http.post("/wechat", params=query(nonce="1"), content=body)
        assert (answer.status_code, answer.headers["content-type"]) == (
            200,
            "application/xml; charset=utf-8",
        )
        assert "<Content><![CDATA[hello]]></Content>" in answer.text
        answer = await http.post(
            "/wechat", params=query(nonce="2"), content=chunked(event_xml("SCAN", "2").encode())
        )
        assert "<Content><![CDATA[hello]]></Content>" in answer.text
        answer = await http.post("/wechat", params=query(nonce="3"), content=chunked(body + b" "))
        assert (answer.status_code, answer.text) == (413, "payload too large")
        answer = await http.get(
            "/wechat", params=[*query().items(), ("echostr", "first"), ("echostr", "second")]
        )
        assert (answer.status_code, answer.text) == (200, "first")
        answer = await http.request("PATCH", "/wechat", params=query())
        assert (answer.status_code, answer.text) == (405, "method not allowed")
    assert [s.scene for s in handler.seen] == ["1", "2"]


async def test_a_cancelled_handler_releases_its_key_even_through_an_async_store():
    import anyio

    class RoundTripDedup(events.MemoryDedup):  # a release that awaits, as Redis's does
        async def release(self, key: str) -> None:
            await anyio.lowlevel.checkpoint()
            await super().release(key)

    dedup = RoundTripDedup()
    receiver = plain_receiver(reply_deadline=0.05, shutdown_grace=0, dedup=dedup)
    receiver.on_scan(Gate())
    with anyio.fail_after(5):
        async with receiver:
            await receiver.handle("POST", query(), event_xml("SCAN", "1").encode())
            assert len(dedup) == 1
    assert len(dedup) == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiohttp_consumes_at_most_max_body_plus_one_bytes_of_a_stream():
    from aiohttp.test_utils import make_mocked_request

    class Stream:  # a client sends a short chunk, then plenty, then resets at 11 bytes
        def __init__(self) -> None:
            self.available = [4, 64, 64]
            self.consumed = 0

        async def read(self, n: int) -> bytes:
            if self.consumed >= 11:  # aiohttp raises a stored error even for read(0)
                raise ConnectionResetError("the client went away")
            size = min(n, self.available.pop(0)) if self.available else 0
            self.consumed += size
            return b"<" * size

    receiver = plain_receiver(max_body=10)
    stream = Stream()
    request = make_mocked_request("POST", "/wechat?" + _qs(query()), payload=stream)
    response = await receiver.aiohttp_handler(request)
    assert (response.status, response.body) == (413, b"payload too large")
    assert stream.consumed == 11
