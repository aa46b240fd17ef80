"""Scan to log in: a temporary QR code per login attempt, the scan pushed to any worker.

The flow (reference/events.md §4)::

    browser ──GET /──▶ worker A: attempt = await login.start()   (qrcode/create, QR_STR_SCENE)
       │  shows attempt.image_url, keeps attempt.id (never the scene)
       │
    WeChat ──push──▶ worker B: Receiver ─▶ login.on_scan(scan)    pending → scanned, wake-up
       │
    browser ──wait──▶ worker C: await login.wait(attempt.id)     scanned → consumed, once

All state lives in the store: :class:`MemoryLoginStore` for one process (the default), or
:class:`RedisLoginStore` so that ``start``, ``on_scan`` and ``wait`` may each run on a different
worker process. Usage::

    login = ScanLogin(wx, store=RedisLoginStore(redis), expire_seconds=300, site="example.com")
    receiver.on_scan(login.on_scan)                      # a wxqr.events.Receiver
    attempt = await login.start()                        # -> LoginAttempt
    result = await login.wait(attempt.id, timeout=25.0)  # -> LoginResult | None (timeout)

Security model:

* The scene in the code is ``scene_prefix`` + 32 characters of :func:`secrets.token_urlsafe`
  (192 bits); the attempt ``id`` the browser holds is another 256 random bits, unrelated to the
  scene. Both are single use: a scene leads to exactly one attempt, and a result is handed out
  exactly once, to a ``wait`` on the attempt's id. Nothing is broadcast: each attempt has its
  own wake-up, and a waiter can only learn about the attempt whose id it holds.
* A scan counts only if its scene belongs to a pending attempt **and** its ticket is the one
  ``qrcode/create`` returned for that attempt; the first such scan wins, later ones are ignored.
* Stores keep only SHA-256 digests of the id and the scene in their keys; values hold the
  ticket (public: it is in the image URL), the scanner's OpenID and timestamps. No token.
* Login relay ("QRLjacking"): an attacker may show a victim the attacker's own code (in a
  phishing page), and the victim's scan then logs the *attacker's* browser in as the victim.
  No server-side check can tell the two browsers apart. The mitigation is telling the scanner,
  inside WeChat, which site the scan logs in to: pass ``site=`` (or ``reply=``) and
  :meth:`ScanLogin.on_scan` returns that text, which the Receiver sends as the passive reply, so
  a victim who never meant to log in to that site sees it at once. With ``confirm=True`` the
  scan only asks "Reply 1 to log in to <site>" and the login completes when the scanner's own
  reply reaches :meth:`ScanLogin.on_message` (``receiver.on("text")``). Keep codes
  short-lived, bind the result to the browser that started the attempt (a cookie holding the
  id, as the example does), and notify users of new logins.

Budget: each :meth:`ScanLogin.start` calls ``cgi-bin/qrcode/create`` once, and WeChat allows
100,000 calls a day per account (reference/wechat-api.md §3.1), shared with every other use of
that API: at most 100,000 login attempts a day. Beyond it WeChat answers 45009 and ``start``
raises the :class:`~wxqr.QuotaExceededError` unchanged. Rate-limit ``start`` per client IP.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import anyio
import attrs

from . import _validate as v
from .errors import ValidationError, WxqrError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ._client import Client
    from .events import Event, QrScan

__all__ = [
    "LoginAttempt",
    "LoginExpired",
    "LoginRecord",
    "LoginResult",
    "LoginStatus",
    "LoginStore",
    "LoginStoreError",
    "MemoryLoginStore",
    "RedisLoginStore",
    "ScanLogin",
]

#: What :meth:`ScanLogin.status` answers (``"confirming"`` only with ``confirm=True``).
LoginStatus = Literal["pending", "confirming", "scanned", "expired", "consumed"]
_WAITING: Final = ("pending", "confirming")

_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{16,128}")
_PREFIX_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{0,32}")
#: Random characters in a scene: ``token_urlsafe(24)`` is 32 characters, 192 bits.
_SCENE_RANDOM_BYTES: Final = 24
_ID_RANDOM_BYTES: Final = 32
_MAX_WAIT: Final = 3600.0


class LoginExpired(WxqrError):
    """The login attempt is over: its code expired unscanned, or its result was already taken.

    Attributes:
        status: ``"expired"`` (expired, or an id this store never issued) or ``"consumed"``
            (a previous :meth:`ScanLogin.wait` returned the result).
    """

    def __init__(self, status: LoginStatus) -> None:
        self.status = status
        if status == "consumed":
            message = "this login attempt was already used; start a new one"
        else:
            message = "this login attempt expired (or never existed); start a new one"
        super().__init__(message)


class LoginStoreError(WxqrError):
    """The login store (e.g. Redis) failed or did not answer in time."""


@attrs.frozen
class LoginAttempt:
    """A started login: what the page needs to show the code and wait for its scan.

    Attributes:
        id: opaque, unguessable handle of the attempt; hand it to the browser (it is *not*
            the scene, which stays between WeChat and the server; stores keep digests of both).
        ticket: the QR code's ticket.
        url: the QR code's content, to render the image yourself.
        image_url: the ``showqrcode`` URL of the image.
        expires_at: Unix time (of the :class:`ScanLogin` clock) at which the code expires.
    """

    id: str = attrs.field(repr=False)  # the browser's bearer handle: kept out of logs
    ticket: str
    url: str
    image_url: str
    expires_at: float


@attrs.frozen
class LoginResult:
    """Who scanned the code.

    Attributes:
        openid: the scanner's OpenID for this account.
        new_follower: True when the scan made them follow the account (a ``subscribe`` push).
        scanned_at: WeChat's ``CreateTime`` of the push, Unix seconds.
    """

    openid: str
    new_follower: bool
    scanned_at: int


@attrs.frozen
class LoginRecord:
    """What a :class:`LoginStore` keeps about one attempt (for custom store implementations).

    Attributes:
        state: ``"pending"``, ``"confirming"`` (scanned, waiting for the scanner's reply in
            WeChat; ``confirm=True``), ``"scanned"`` or ``"consumed"``.
        ticket: the code's ticket (a scan must carry it).
        expires_at: the code's expiry (Unix time).
        closes_at: ``expires_at`` + grace: after it the attempt is over and may be forgotten.
        result: who scanned, once ``state`` is ``"confirming"`` or ``"scanned"``.
    """

    state: Literal["pending", "confirming", "scanned", "consumed"]
    ticket: str
    expires_at: float
    closes_at: float
    result: LoginResult | None = None


class LoginStore(Protocol):
    """Where login attempts live. Keys are digests computed by :class:`ScanLogin`.

    ``key`` identifies an attempt (a digest of its id), ``scene_key`` its scene (a digest of
    the scene). Every method must be bounded in time and raise :class:`LoginStoreError` on
    failure.
    """

    async def create(self, key: str, scene_key: str, record: LoginRecord, *, now: float) -> None:
        """Store a new pending attempt, forgotten after ``record.closes_at``."""
        ...

    async def get(self, key: str) -> LoginRecord | None:
        """The attempt's record, or None if unknown (or forgotten)."""
        ...

    async def mark_scanned(
        self,
        scene_key: str,
        ticket: str,
        result: LoginResult,
        *,
        now: float,
        confirm_key: str | None = None,
    ) -> bool:
        """Atomically move pending → scanned if ``ticket`` matches and ``now < closes_at``.

        Wakes every waiter of that attempt. With ``confirm_key`` (a digest of the scanner's
        OpenID) the move is pending → confirming instead, nobody is woken, and ``confirm_key``
        is remembered for :meth:`confirm`. Returns whether the transition happened.
        """
        ...

    async def confirm(self, confirm_key: str, openid: str, *, now: float) -> bool:
        """Atomically move the attempt ``openid`` scanned last from confirming → scanned.

        Only if that attempt is still open and was scanned by ``openid``; wakes its waiters.
        """
        ...

    async def consume(self, key: str) -> LoginRecord | None:
        """Atomically move scanned → consumed; return the record as it was *before* the call."""
        ...

    async def wait(self, key: str, timeout: float) -> LoginRecord | None:
        """Return the record once it is scanned or consumed (or gone), or after ``timeout`` s.

        A transition between the caller's last read and this call must not be missed.
        """
        ...


def _digest(kind: str, value: str) -> str:
    # Keys never hold the id (a bearer credential) nor the scene; a digest identifies them.
    return hashlib.sha256(f"wxqr-login:{kind}:{value}".encode()).hexdigest()


def _seconds(name: str, value: Any, *, low: float, high: float, open_low: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (value <= low if open_low else value < low)
        or value > high
    ):
        bound = f"> {low:g}" if open_low else f">= {low:g}"
        raise ValidationError(name, f"must be seconds {bound} and <= {high:g}, got {value!r:.40}")
    return float(value)


class ScanLogin:
    """Scan-to-log-in sessions over temporary ``QR_STR_SCENE`` codes (see the module docs).

    Args:
        client: the Official Account's :class:`wxqr.Client` (it creates the codes).
        store: :class:`MemoryLoginStore` (default; one process) or :class:`RedisLoginStore`
            (every worker process).
        expire_seconds: lifetime of each code, 1..2592000 (default 300).
        grace_seconds: 0..300 (default 10): after the code's expiry, a scan WeChat delivers
            late (it resends for ~15 s) is still accepted and waiters keep waiting this long.
        site: the site's name; when given, an accepted scan is answered in WeChat with
            "You are logging in to <site> ..." (the login-relay warning, see module docs).
        reply: the exact passive reply text for an accepted scan (overrides ``site``'s).
        confirm: the optional confirmation step against login relay: a scan only asks the
            scanner, in WeChat, to "Reply 1 to log in to <site>"; the login completes when
            that reply reaches :meth:`on_message` (register it with
            ``receiver.on("text")``). Needs ``site``.
        confirm_text: what the scanner must reply (default ``"1"``, 1..16 characters).
        scene_prefix: 0..32 characters ``[A-Za-z0-9_-]`` put before the random part of each
            scene, to tell login codes from your other codes (default ``"L"``).
        clock: returns the Unix time; default :func:`time.time` (tests pass the sandbox's
            virtual clock, e.g. ``state.clock.now``).

    Raises:
        ValidationError: an argument is out of range.
    """

    def __init__(
        self,
        client: Client,
        *,
        store: LoginStore | None = None,
        expire_seconds: int = 300,
        grace_seconds: float = 10.0,
        site: str | None = None,
        reply: str | None = None,
        scene_prefix: str = "L",
        confirm: bool = False,
        confirm_text: str = "1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._store: LoginStore = store if store is not None else MemoryLoginStore()
        self._expire_seconds = v.expire_seconds(expire_seconds)
        self._grace = _seconds("grace_seconds", grace_seconds, low=0, high=300)
        if not isinstance(scene_prefix, str) or not _PREFIX_PATTERN.fullmatch(scene_prefix):
            raise ValidationError("scene_prefix", "must be 0..32 characters from A-Z a-z 0-9 _ -")
        self._scene_prefix = scene_prefix
        if site is not None:
            v.text("site", site, max_len=64)
        self._confirm = v.boolean("confirm", confirm)
        self._confirm_text = v.text("confirm_text", confirm_text, max_len=16).strip()
        if not self._confirm_text:
            raise ValidationError("confirm_text", "must not be blank")
        if confirm and site is None:
            raise ValidationError("site", "is required with confirm=True (the prompt names it)")
        if reply is not None:
            v.text("reply", reply, max_len=600)
        elif confirm:
            reply = (
                f"Reply {self._confirm_text} to log in to {site} with this scan. If you did not "
                f"open {site} yourself, do not reply: someone may be trying to use your account."
            )
        elif site is not None:
            reply = (
                f"You are logging in to {site} with this scan. If you did not open {site} "
                "yourself, someone may be trying to use your account: tell us."
            )
        self._reply = reply
        self._confirmed_reply = f"You are logged in to {site}." if site is not None else None
        if not callable(clock):
            raise ValidationError("clock", "must be a callable returning the Unix time")
        self._clock = clock

    def __repr__(self) -> str:
        return (
            f"ScanLogin(store={type(self._store).__name__}, expire_seconds={self._expire_seconds})"
        )

    @property
    def store(self) -> LoginStore:
        """The store holding the attempts."""
        return self._store

    async def start(self, *, timeout: float | None = None) -> LoginAttempt:
        """Create a login attempt: a new temporary code with an unguessable scene.

        Calls ``POST cgi-bin/qrcode/create`` (``QR_STR_SCENE``) once, then stores the attempt
        until the code expires (plus the grace).
        Docs: https://developers.weixin.qq.com/doc/service/api/qrcode/qrcodes/api_createqrcode.html

        Args:
            timeout: per-call timeout of the ``qrcode/create`` request, in seconds.

        Returns:
            The :class:`LoginAttempt`: give ``id`` and ``image_url`` (or ``url``) to the page.

        Raises:
            QuotaExceededError: the account's 100,000 ``qrcode/create`` calls of the day are
                used up (45009), raised unchanged; other :class:`~wxqr.APIError` likewise.
            LoginStoreError: the store failed.
        """
        scene = self._scene_prefix + secrets.token_urlsafe(_SCENE_RANDOM_BYTES)
        attempt_id = secrets.token_urlsafe(_ID_RANDOM_BYTES)
        now = self._clock()
        qr = await self._client.qrcode.create_temporary(
            scene_str=scene, expire_seconds=self._expire_seconds, timeout=timeout
        )
        # WeChat caps expire_seconds (and says so in its answer); trust the answer.
        lifetime = qr.expire_seconds if qr.expire_seconds is not None else self._expire_seconds
        expires_at = now + min(lifetime, self._expire_seconds)
        record = LoginRecord("pending", qr.ticket, expires_at, expires_at + self._grace)
        await self._store.create(
            _digest("id", attempt_id), _digest("scene", scene), record, now=now
        )
        return LoginAttempt(
            id=attempt_id,
            ticket=qr.ticket,
            url=qr.url,
            image_url=self._client.qrcode.show_url(qr.ticket),
            expires_at=expires_at,
        )

    async def status(self, attempt_id: str) -> LoginStatus:
        """Where an attempt stands: ``"pending"``, ``"scanned"``, ``"expired"`` or ``"consumed"``
        (and ``"confirming"`` with ``confirm=True``: scanned, waiting for the scanner's reply).

        Unknown ids answer ``"expired"`` (a forgotten attempt and a never-issued one look the
        same). Reading the status never consumes the result.

        Raises:
            ValidationError: ``attempt_id`` is not an id :meth:`start` could have made.
            LoginStoreError: the store failed.
        """
        record = await self._store.get(_digest("id", _attempt_id(attempt_id)))
        return self._status(record)

    def _status(self, record: LoginRecord | None) -> LoginStatus:
        if record is None or self._clock() >= record.closes_at:
            return "expired"
        return record.state

    async def wait(self, attempt_id: str, *, timeout: float = 25.0) -> LoginResult | None:
        """Wait for the attempt's code to be scanned; return who scanned it, exactly once.

        The wait ends at the scan (on whichever worker it arrives), after ``timeout`` seconds,
        or when the attempt closes. The first ``wait`` that sees the scan takes the result and
        the attempt becomes ``"consumed"``.

        Args:
            attempt_id: :attr:`LoginAttempt.id`.
            timeout: seconds to wait, > 0 and <= 3600 (keep it under your proxies' idle
                timeout for long polling).

        Returns:
            The :class:`LoginResult`, or None on timeout (the attempt stays pending: wait
            again).

        Raises:
            LoginExpired: the code expired unscanned, or the result was already taken
                (``.status`` tells which).
            ValidationError: a bad ``attempt_id`` or ``timeout``.
            LoginStoreError: the store failed.
        """
        key = _digest("id", _attempt_id(attempt_id))
        timeout = _seconds("timeout", timeout, low=0, high=_MAX_WAIT, open_low=True)
        deadline = anyio.current_time() + timeout
        while True:
            record = await self._store.get(key)
            status = self._status(record)
            if status == "scanned":
                before = await self._store.consume(key)
                if before is not None and before.state == "scanned" and before.result:
                    return before.result
                status = "consumed"  # another waiter took it between our read and consume
            if status not in _WAITING:
                raise LoginExpired(status)
            assert record is not None
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                return None  # after one last read, so a missed wake-up costs nothing
            # Returns at once if the scan landed after our read; then we loop and consume.
            await self._store.wait(key, min(remaining, record.closes_at - self._clock()))

    async def on_scan(self, scan: QrScan) -> str | None:
        """The :class:`wxqr.events.Receiver` scan handler: ``receiver.on_scan(login.on_scan)``.

        Accepts the scan only if its scene is a pending attempt's and its ticket that
        attempt's ticket; the attempt becomes ``"scanned"`` (a later scan of the same code
        changes nothing) and every waiter, on any worker, wakes up.

        Args:
            scan: the ``wxqr.events.QrScan`` the Receiver parsed.

        Returns:
            The passive reply (``site``/``reply``) when the scan logged an attempt in; None
            otherwise (no reply configured; scans of other codes, repeats, closed attempts).
            The Receiver has one scan handler: to handle your other codes too, register your
            own handler and call this first (``return await login.on_scan(scan) or ...``).

        Raises:
            LoginStoreError: the store failed (the Receiver answers 500 and WeChat resends).
        """
        scene, ticket = scan.scene, scan.ticket
        if not isinstance(scene, str) or not scene.startswith(self._scene_prefix):
            return None
        if not isinstance(ticket, str) or not ticket:
            return None
        result = LoginResult(
            openid=scan.openid, new_follower=bool(scan.new_follower), scanned_at=scan.create_time
        )
        accepted = await self._store.mark_scanned(
            _digest("scene", scene),
            ticket,
            result,
            now=self._clock(),
            confirm_key=_digest("openid", scan.openid) if self._confirm else None,
        )
        if not accepted:
            return None
        return self._reply

    async def on_message(self, message: Event) -> str | None:
        """The confirmation step's handler: ``receiver.on("text")(login.on_message)``.

        When the scanner of an attempt that awaits confirmation replies ``confirm_text``,
        the attempt becomes ``"scanned"`` and its waiters wake up. Only the OpenID that
        scanned can confirm, and only while the attempt is open.

        Args:
            message: the ``wxqr.events.Event`` of a text message (``raw["Content"]``).

        Returns:
            "You are logged in to <site>." when the message confirmed a login; None
            otherwise (other texts: handle them yourself after calling this).

        Raises:
            LoginStoreError: the store failed.
        """
        if not self._confirm or message.raw.get("Content", "").strip() != self._confirm_text:
            return None
        openid = message.openid
        confirmed = await self._store.confirm(_digest("openid", openid), openid, now=self._clock())
        return self._confirmed_reply if confirmed else None


def _attempt_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise ValidationError(
            "attempt_id", "must be the id of a LoginAttempt (16..128 URL-safe characters)"
        )
    return value


# -- memory ------------------------------------------------------------------------------------


@attrs.define
class _Entry:
    record: LoginRecord
    scene_key: str
    changed: anyio.Event
    confirm_key: str | None = None


class MemoryLoginStore:
    """Login attempts in this process's memory (one worker; asyncio or trio).

    Closed attempts are forgotten as new ones are created, so memory stays bounded by the
    attempts alive at once.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._scenes: dict[str, str] = {}
        self._confirming: dict[str, str] = {}
        self._closing: list[tuple[float, str]] = []

    def __repr__(self) -> str:
        return f"MemoryLoginStore(attempts={len(self._entries)})"

    def _purge(self, now: float) -> None:
        while self._closing and self._closing[0][0] <= now:
            _, key = heapq.heappop(self._closing)
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._scenes.pop(entry.scene_key, None)
                if entry.confirm_key and self._confirming.get(entry.confirm_key) == key:
                    del self._confirming[entry.confirm_key]

    async def create(self, key: str, scene_key: str, record: LoginRecord, *, now: float) -> None:
        """Store a new pending attempt (and forget the closed ones)."""
        self._purge(now)
        self._entries[key] = _Entry(record, scene_key, anyio.Event())
        self._scenes[scene_key] = key
        heapq.heappush(self._closing, (record.closes_at, key))

    async def get(self, key: str) -> LoginRecord | None:
        """The attempt's record, or None."""
        entry = self._entries.get(key)
        return entry.record if entry is not None else None

    async def mark_scanned(
        self,
        scene_key: str,
        ticket: str,
        result: LoginResult,
        *,
        now: float,
        confirm_key: str | None = None,
    ) -> bool:
        """pending → scanned (or confirming) if the ticket matches and the attempt is open."""
        key = self._scenes.get(scene_key)
        entry = self._entries.get(key) if key is not None else None
        if key is None or entry is None:
            return False
        record = entry.record
        if record.state != "pending" or record.ticket != ticket or now >= record.closes_at:
            return False
        if confirm_key is not None:
            entry.record = attrs.evolve(record, state="confirming", result=result)
            entry.confirm_key = confirm_key
            self._confirming[confirm_key] = key
        else:
            entry.record = attrs.evolve(record, state="scanned", result=result)
            entry.changed.set()
        return True

    async def confirm(self, confirm_key: str, openid: str, *, now: float) -> bool:
        """confirming → scanned for the attempt ``openid`` scanned last; wake waiters."""
        key = self._confirming.get(confirm_key)
        entry = self._entries.get(key) if key is not None else None
        if entry is None:
            return False
        record = entry.record
        if (
            record.state != "confirming"
            or record.result is None
            or record.result.openid != openid
            or now >= record.closes_at
        ):
            return False
        del self._confirming[confirm_key]
        entry.record = attrs.evolve(record, state="scanned")
        entry.changed.set()
        return True

    async def consume(self, key: str) -> LoginRecord | None:
        """scanned → consumed; the record before the call."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        before = entry.record
        if before.state == "scanned":
            entry.record = attrs.evolve(before, state="consumed", result=None)
        return before

    async def wait(self, key: str, timeout: float) -> LoginRecord | None:
        """The record once scanned or consumed, or after ``timeout`` seconds."""
        entry = self._entries.get(key)
        if entry is None or entry.record.state not in _WAITING:
            return entry.record if entry is not None else None
        # No await between the check and waiting on the event: no scan can slip in between.
        with anyio.move_on_after(timeout):
            await entry.changed.wait()
        return entry.record


# -- Redis -------------------------------------------------------------------------------------

# KEYS[1] = the attempt hash, KEYS[2] = the confirmation index (or ""). ARGV: ticket, now,
# openid, new_follower, scanned_at, channel, the attempt's digest.
_MARK_SCANNED: Final = """
local f = redis.call('HMGET', KEYS[1], 'st', 'tk', 'cl')
if f[1] ~= 'pending' or f[2] ~= ARGV[1] or tonumber(f[3]) <= tonumber(ARGV[2]) then
  return 0
end
if KEYS[2] ~= '' then
  redis.call('HSET', KEYS[1], 'st', 'confirming', 'op', ARGV[3], 'nf', ARGV[4], 'at', ARGV[5])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1 then ttl = 1000 end
  redis.call('SET', KEYS[2], ARGV[7], 'PX', ttl)
  return 1
end
redis.call('HSET', KEYS[1], 'st', 'scanned', 'op', ARGV[3], 'nf', ARGV[4], 'at', ARGV[5])
redis.call('PUBLISH', ARGV[6], 'scanned')
return 1
"""

# KEYS[1] = the confirmation index, KEYS[2] = the attempt hash it must name. ARGV: the
# attempt's digest, openid, now, channel.
_CONFIRM: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local f = redis.call('HMGET', KEYS[2], 'st', 'op', 'cl')
if f[1] ~= 'confirming' or f[2] ~= ARGV[2] or tonumber(f[3]) <= tonumber(ARGV[3]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'st', 'scanned')
redis.call('PUBLISH', ARGV[4], 'scanned')
return 1
"""

# KEYS[1] = the attempt hash. Returns the fields as they were before the call.
_CONSUME: Final = """
local f = redis.call('HMGET', KEYS[1], 'st', 'tk', 'ex', 'cl', 'op', 'nf', 'at')
if not f[1] then return {} end
if f[1] == 'scanned' then
  redis.call('HSET', KEYS[1], 'st', 'consumed')
  redis.call('HDEL', KEYS[1], 'op', 'nf', 'at')
end
return {f[1], f[2], f[3], f[4], f[5] or '', f[6] or '', f[7] or ''}
"""

_FIELDS: Final = ("st", "tk", "ex", "cl", "op", "nf", "at")


class RedisLoginStore:
    """Login attempts in Redis, shared by every worker process (``redis.asyncio``; asyncio only).

    ==========================  ================================================================
    key                         value
    ==========================  ================================================================
    ``{prefix}a:{H(id)}``       hash: ``st`` state, ``tk`` ticket, ``ex``/``cl`` expiry and close
                                times, then ``op`` OpenID, ``nf`` new follower, ``at`` scan time
    ``{prefix}s:{H(scene)}``    the attempt's ``H(id)``
    ``{prefix}c:{H(openid)}``   ``confirm=True``: the attempt awaiting that scanner's reply
    ``{prefix}w:{H(id)}``       pub/sub channel: ``scanned`` is published on the transition
    ==========================  ================================================================

    ``H`` is SHA-256: Redis never sees an attempt id (the browser's bearer handle) nor a scene.
    Every key expires when its attempt closes. The pending → scanned and scanned → consumed
    transitions are single Lua scripts, so two workers can never both win. A waiter subscribes
    to its channel and waits for Redis to confirm the subscription *before* reading the state,
    so a scan landing in between is not missed.

    Args:
        redis: a caller-owned ``redis.asyncio.Redis`` (wxqr never closes it). Each waiting
            call holds one connection of its pool for the duration of the wait.
        prefix: key prefix (default ``"wxqr:login:"``).
        op_timeout: seconds any single Redis operation may take (default 5) before
            :class:`LoginStoreError`.

    Raises:
        ValidationError: a bad ``prefix`` or ``op_timeout``.
    """

    def __init__(
        self, redis: Redis, *, prefix: str = "wxqr:login:", op_timeout: float = 5.0
    ) -> None:
        v.text("prefix", prefix, min_len=0, max_len=100)
        self._redis = redis
        self._prefix = prefix
        self._op_timeout = _seconds("op_timeout", op_timeout, low=0, high=300, open_low=True)
        self._mark_scanned = redis.register_script(_MARK_SCANNED)
        self._consume = redis.register_script(_CONSUME)
        self._confirm = redis.register_script(_CONFIRM)

    def __repr__(self) -> str:
        return f"RedisLoginStore(prefix={self._prefix!r}, op_timeout={self._op_timeout!r})"

    def _attempt(self, key: str) -> str:
        return f"{self._prefix}a:{key}"

    def _channel(self, key: str) -> str:
        return f"{self._prefix}w:{key}"

    def _confirming(self, confirm_key: str) -> str:
        return f"{self._prefix}c:{confirm_key}"

    async def _bounded(self, op: str, call: Callable[[], Any], extra: float = 0.0) -> Any:
        from redis.exceptions import RedisError

        try:
            with anyio.fail_after(self._op_timeout + extra):
                return await call()
        except TimeoutError:
            raise LoginStoreError(
                f"Redis {op} did not answer within {self._op_timeout + extra:g} s"
            ) from None
        except (RedisError, OSError) as exc:
            raise LoginStoreError(f"Redis {op} failed: {type(exc).__name__}") from None

    async def create(self, key: str, scene_key: str, record: LoginRecord, *, now: float) -> None:
        """Store a new pending attempt; both keys expire when it closes."""
        ttl_ms = max(1000, math.ceil((record.closes_at - now) * 1000))
        fields: dict[Any, Any] = {
            "st": record.state,
            "tk": record.ticket,
            "ex": repr(record.expires_at),
            "cl": repr(record.closes_at),
        }

        async def run() -> Any:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._attempt(key), mapping=fields)
                pipe.pexpire(self._attempt(key), ttl_ms)
                pipe.set(f"{self._prefix}s:{scene_key}", key, px=ttl_ms)
                return await pipe.execute()

        await self._bounded("create", run)

    async def get(self, key: str) -> LoginRecord | None:
        """The attempt's record, or None."""
        values = await self._bounded("get", lambda: self._redis.hmget(self._attempt(key), _FIELDS))
        return _record(values)

    async def mark_scanned(
        self,
        scene_key: str,
        ticket: str,
        result: LoginResult,
        *,
        now: float,
        confirm_key: str | None = None,
    ) -> bool:
        """pending → scanned (publishing on the attempt's channel) or confirming, in one script."""
        raw = await self._bounded("get", lambda: self._redis.get(f"{self._prefix}s:{scene_key}"))
        if raw is None:
            return False
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        args = [
            ticket,
            repr(now),
            result.openid,
            "1" if result.new_follower else "0",
            str(result.scanned_at),
            self._channel(key),
            key,
        ]
        keys = [self._attempt(key), "" if confirm_key is None else self._confirming(confirm_key)]
        done = await self._bounded("mark_scanned", lambda: self._mark_scanned(keys=keys, args=args))
        return bool(done)

    async def confirm(self, confirm_key: str, openid: str, *, now: float) -> bool:
        """confirming → scanned in one Lua script; publishes on the attempt's channel."""
        index = self._confirming(confirm_key)
        raw = await self._bounded("get", lambda: self._redis.get(index))
        if raw is None:
            return False
        key = _text(raw)
        keys = [index, self._attempt(key)]
        args = [key, openid, repr(now), self._channel(key)]
        done = await self._bounded("confirm", lambda: self._confirm(keys=keys, args=args))
        return bool(done)

    async def consume(self, key: str) -> LoginRecord | None:
        """scanned → consumed in one Lua script; the record before the call."""
        values = await self._bounded(
            "consume", lambda: self._consume(keys=[self._attempt(key)], args=[])
        )
        return _record(list(values)) if values else None

    async def wait(self, key: str, timeout: float) -> LoginRecord | None:
        """Subscribe (confirmed), read, then wait for the wake-up or ``timeout`` seconds."""
        from redis.exceptions import RedisError

        channel = self._channel(key)
        pubsub = self._redis.pubsub()
        try:
            try:
                with anyio.fail_after(self._op_timeout):
                    await pubsub.subscribe(channel)
                    # Wait for Redis to confirm: only then can no publish be missed.
                    while True:
                        message = await pubsub.get_message(timeout=self._op_timeout)
                        if message is not None and message.get("type") == "subscribe":
                            break
            except TimeoutError:
                raise LoginStoreError(
                    f"Redis subscribe did not answer within {self._op_timeout:g} s"
                ) from None
            except (RedisError, OSError) as exc:
                raise LoginStoreError(f"Redis subscribe failed: {type(exc).__name__}") from None
            record = await self.get(key)
            if record is None or record.state not in _WAITING:
                return record
            deadline = anyio.current_time() + timeout
            while (remaining := deadline - anyio.current_time()) > 0:
                read = functools.partial(
                    pubsub.get_message, ignore_subscribe_messages=True, timeout=remaining
                )
                message = await self._bounded("wait", read, extra=remaining)
                if message is not None and message.get("type") == "message":
                    break
            return await self.get(key)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._op_timeout):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(values: list[Any]) -> LoginRecord | None:
    fields = [_text(x) if x is not None else "" for x in values]
    if len(fields) != len(_FIELDS) or fields[0] not in (*_WAITING, "scanned", "consumed"):
        return None
    state, ticket, expires, closes, openid, follower, scanned_at = fields
    try:
        result = (
            LoginResult(openid, follower == "1", int(scanned_at))
            if state in ("confirming", "scanned")
            else None
        )
        return LoginRecord(state, ticket, float(expires), float(closes), result)  # type: ignore[arg-type]
    except ValueError:
        raise LoginStoreError("unreadable login record in Redis") from None
