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
    receiver = plain_receiver(max_skew=60)
    answer = await receiver.handle("GET", query(timestamp=str(NOW - 61), echostr="e"), b"")
    # the signature is over the original timestamp: re-sign
    assert answer.status == 403
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
