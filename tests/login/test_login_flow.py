"""ScanLogin against every store: start, scan, wait, expiry, exactly-once, no lost wake-up.

WeChat is ``httpx.MockTransport`` (tests/mockwechat.py) issuing a distinct code per call; scans
are :class:`FakeScan` objects carrying exactly what ``wxqr.events.QrScan`` carries. Each test
runs on the memory store (asyncio and trio) and on a real redis-server (asyncio).
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import anyio
import pytest
from login_helpers import Clock, FakeScan, fake_login
from mockwechat import error

import wxqr
from wxqr.login import LoginExpired, LoginResult, ScanLogin

pytestmark = pytest.mark.anyio


async def test_start_creates_a_str_scene_code_with_an_unguessable_scene(make_store):
    login, _fake, issuer = fake_login(make_store(), expire_seconds=300)
    first = await login.start()
    second = await login.start()

    bodies = issuer.bodies
    assert [b["action_name"] for b in bodies] == ["QR_STR_SCENE", "QR_STR_SCENE"]
    assert [b["expire_seconds"] for b in bodies] == [300, 300]
    scenes = [b["action_info"]["scene"]["scene_str"] for b in bodies]
    for scene in scenes:
        assert len(scene) <= 64
        # "L" + token_urlsafe(24): 32 URL-safe characters, 192 random bits.
        assert re.fullmatch(r"L[A-Za-z0-9_-]{32}", scene), scene
    assert scenes[0] != scenes[1]
    for attempt, scene in zip((first, second), scenes, strict=True):
        # The id the browser gets is not (and does not contain) the scene.
        assert attempt.id != scene
        assert scene not in attempt.id
        assert attempt.id not in scene
        assert len(attempt.id) >= 43  # 256 bits
        assert attempt.image_url == (
            "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=" + quote(attempt.ticket, safe="")
        )
        assert attempt.url.startswith("http://weixin.qq.com/q/")
        assert attempt.id not in repr(attempt)
    assert first.id != second.id
    assert first.ticket != second.ticket
    assert await login.status(first.id) == "pending"


async def test_scan_then_wait_returns_the_scanner_exactly_once(make_store):
    login, _, issuer = fake_login(make_store(), site="example.com")
    attempt = await login.start()
    scan = issuer.scan_of(attempt.ticket, "oALICE", new_follower=True, create_time=1700000123)

    reply = await login.on_scan(scan)

    assert reply is not None
    assert "example.com" in reply
    assert await login.status(attempt.id) == "scanned"
    result = await login.wait(attempt.id, timeout=5)
    assert result == LoginResult(openid="oALICE", new_follower=True, scanned_at=1700000123)
    assert await login.status(attempt.id) == "consumed"
    with pytest.raises(LoginExpired) as info:
        await login.wait(attempt.id, timeout=5)
    assert info.value.status == "consumed"


async def test_a_waiter_is_woken_by_a_scan_on_another_worker(make_store):
    # Three "workers": separate ScanLogin objects (and, for Redis, separate connections).
    worker_a, _, issuer = fake_login(make_store())
    worker_b = ScanLogin(worker_a._client, store=make_store())
    worker_c = ScanLogin(worker_a._client, store=make_store())
    attempt = await worker_a.start()
    got: list[object] = []

    async def waiter() -> None:
        got.append(await worker_c.wait(attempt.id, timeout=30))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.2)  # the waiter is blocked now
        assert got == []
        started = time.monotonic()
        assert await worker_b.on_scan(issuer.scan_of(attempt.ticket, "oBOB")) is None
    assert time.monotonic() - started < 10  # woken by the scan, not by its 30 s timeout
    assert got == [LoginResult("oBOB", False, 1_700_000_000)]


async def test_unrelated_scans_and_wrong_tickets_are_ignored(make_store):
    login, _, issuer = fake_login(make_store())
    attempt = await login.start()
    other = await login.start()
    scene = issuer.scenes[attempt.ticket]

    # Another code's ticket with this attempt's scene; a scene nobody issued; another prefix.
    assert await login.on_scan(FakeScan("oEVE", scene, other.ticket)) is None
    assert await login.on_scan(FakeScan("oEVE", "L" + "x" * 32, attempt.ticket)) is None
    assert await login.on_scan(FakeScan("oEVE", "order-9", "TICKET")) is None
    assert await login.on_scan(FakeScan("oEVE", scene, "")) is None

    assert await login.status(attempt.id) == "pending"
    assert await login.status(other.id) == "pending"
    assert await login.wait(attempt.id, timeout=0.2) is None


async def test_a_second_scan_does_not_overwrite_the_first(make_store):
    login, _, issuer = fake_login(make_store(), reply="Logged in to example.com")
    attempt = await login.start()

    assert await login.on_scan(issuer.scan_of(attempt.ticket, "oFIRST")) == (
        "Logged in to example.com"
    )
    assert await login.on_scan(issuer.scan_of(attempt.ticket, "oSECOND")) is None

    result = await login.wait(attempt.id, timeout=5)
    assert result is not None
    assert result.openid == "oFIRST"
    # Nor can a scan after consumption revive the attempt.
    assert await login.on_scan(issuer.scan_of(attempt.ticket, "oTHIRD")) is None
    assert await login.status(attempt.id) == "consumed"


async def test_concurrent_scans_of_one_code_have_exactly_one_winner(make_store):
    login, _, issuer = fake_login(make_store(), reply="ok")
    attempt = await login.start()
    replies: list[str | None] = []

    async def scan(n: int) -> None:
        replies.append(
            await ScanLogin(login._client, store=make_store(), reply="ok").on_scan(
                issuer.scan_of(attempt.ticket, f"oUSER{n}")
            )
        )

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(scan, n)
    assert replies.count("ok") == 1
    assert replies.count(None) == 7


async def test_timeout_returns_none_and_the_attempt_stays_pending(make_store):
    login, _, issuer = fake_login(make_store())
    attempt = await login.start()

    started = time.monotonic()
    assert await login.wait(attempt.id, timeout=0.3) is None
    assert 0.25 <= time.monotonic() - started < 10
    assert await login.status(attempt.id) == "pending"

    # The browser long-polls again and this time the scan comes.
    await login.on_scan(issuer.scan_of(attempt.ticket, "oLATE"))
    result = await login.wait(attempt.id, timeout=5)
    assert result is not None
    assert result.openid == "oLATE"


async def test_concurrent_waiters_get_the_result_once(make_store):
    login, _, issuer = fake_login(make_store())
    attempt = await login.start()
    outcomes: list[object] = []

    async def waiter() -> None:
        other = ScanLogin(login._client, store=make_store())
        try:
            outcomes.append(await other.wait(attempt.id, timeout=30))
        except LoginExpired as exc:
            outcomes.append(exc.status)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(waiter)
            await anyio.sleep(0.3)
            await login.on_scan(issuer.scan_of(attempt.ticket, "oONE"))
    results = [o for o in outcomes if isinstance(o, LoginResult)]
    assert [r.openid for r in results] == ["oONE"]
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["consumed", "consumed"]


async def test_a_scan_between_the_check_and_the_wait_is_not_missed(make_store):
    """The lost-wake-up window: the scan lands after the waiter read "pending"."""
    store = make_store()
    login, _, issuer = fake_login(store)
    attempt = await login.start()
    scanner = ScanLogin(login._client, store=make_store())

    class ScanAfterFirstRead:
        """Delegates to the real store; the scan arrives right after the first read."""

        def __init__(self) -> None:
            self.reads = 0

        def __getattr__(self, name):
            return getattr(store, name)

        async def get(self, key):
            record = await store.get(key)
            self.reads += 1
            if self.reads == 1:
                await scanner.on_scan(issuer.scan_of(attempt.ticket, "oRACE"))
            return record  # stale: still "pending"

    waiting = ScanLogin(login._client, store=ScanAfterFirstRead())
    started = time.monotonic()
    result = await waiting.wait(attempt.id, timeout=20)
    assert result is not None
    assert result.openid == "oRACE"
    assert time.monotonic() - started < 10  # not rescued by the 20 s timeout


async def test_expiry_follows_the_clock_with_a_grace(make_store):
    clock = Clock()
    login, _, issuer = fake_login(make_store(), expire_seconds=60, grace_seconds=10, clock=clock)
    attempt = await login.start()
    assert attempt.expires_at == clock.now + 60

    clock.now += 65  # the code expired; a scan WeChat delivers late is still accepted
    late = await login.start()
    assert await login.status(attempt.id) == "pending"
    clock.now += 6  # 71 s: past the grace
    assert await login.status(attempt.id) == "expired"
    with pytest.raises(LoginExpired) as info:
        await login.wait(attempt.id, timeout=5)
    assert info.value.status == "expired"
    assert await login.on_scan(issuer.scan_of(attempt.ticket, "oTOOLATE")) is None
    assert await login.status(attempt.id) == "expired"

    # The attempt started at 65 s is alive, and a scan within its grace counts.
    clock.now += 60 + 2
    assert await login.on_scan(issuer.scan_of(late.ticket, "oJUSTINTIME")) is None
    assert await login.status(late.id) == "scanned"
    result = await login.wait(late.id, timeout=5)
    assert result is not None
    assert result.openid == "oJUSTINTIME"


async def test_a_wait_ends_when_the_attempt_closes(make_store):
    login, _, _ = fake_login(make_store(), expire_seconds=1, grace_seconds=0)
    attempt = await login.start()
    started = time.monotonic()
    with pytest.raises(LoginExpired):
        await login.wait(attempt.id, timeout=30)
    assert time.monotonic() - started < 10


async def test_unknown_ids_are_expired_and_malformed_ids_refused(make_store):
    login, fake, _ = fake_login(make_store())
    unknown = "A" * 43
    assert await login.status(unknown) == "expired"
    with pytest.raises(LoginExpired):
        await login.wait(unknown, timeout=1)
    for bad in ("", "short", "x" * 200, "has space" * 3, "../../etc/passwd0000", None, 42):
        with pytest.raises(wxqr.ValidationError, match="attempt_id"):
            await login.status(bad)
        with pytest.raises(wxqr.ValidationError, match="attempt_id"):
            await login.wait(bad)
    assert fake.requests == []


async def test_quota_error_is_raised_unchanged_and_nothing_is_stored(make_store):
    store = make_store()
    login, fake, _ = fake_login(store)
    fake.reply("cgi-bin/qrcode/create", error(45009))
    with pytest.raises(wxqr.QuotaExceededError) as info:
        await login.start()
    assert type(info.value) is wxqr.QuotaExceededError
    assert info.value.errcode == 45009
    assert info.value.endpoint == "cgi-bin/qrcode/create"
    if hasattr(store, "_entries"):
        assert store._entries == {}


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("expire_seconds", 0),
        ("expire_seconds", 2_592_001),
        ("expire_seconds", 30.5),
        ("grace_seconds", -1),
        ("grace_seconds", 301),
        ("grace_seconds", float("nan")),
        ("scene_prefix", "x" * 33),
        ("scene_prefix", "bad prefix"),
        ("site", ""),
        ("reply", "x" * 601),
        ("clock", 123),
    ],
)
async def test_bad_options_are_refused_before_any_request(make_store, option, value):
    fake_client = fake_login(make_store())[1]
    with pytest.raises(wxqr.ValidationError, match=option):
        ScanLogin(fake_client.client(), store=make_store(), **{option: value})
    assert fake_client.requests == []


@pytest.mark.parametrize("timeout", [0, -1, 3601, float("inf"), "5", True])
async def test_bad_wait_timeouts_are_refused(make_store, timeout):
    login, fake, _ = fake_login(make_store())
    with pytest.raises(wxqr.ValidationError, match="timeout"):
        await login.wait("A" * 43, timeout=timeout)
    assert fake.requests == []
