"""Everything the sandbox remembers: accounts, tokens, tickets, short keys, jump rules, counters.

One :class:`SandboxState` is the whole emulated WeChat. The ASGI app (``_app.py``) is a thin
function of it, so a test builds a state, configures it (accounts, failure states, faults), and
asserts on it afterwards (``state.requests``, ``state.calls``, ``state.token_fetches``).

Handlers run synchronously under ``state.lock`` (a ``threading.RLock``), so a sandbox served from
a background thread (``served()``) can be inspected and reconfigured from the test's thread.
"""

from __future__ import annotations

import random
import string
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._clock import VirtualClock

if TYPE_CHECKING:
    from ._faults import FaultPlan
    from ._push import Push, PushConfig

__all__ = [
    "DEFAULT_APPID",
    "DEFAULT_PAGES",
    "DEFAULT_SECRET",
    "Account",
    "IssuedToken",
    "JumpRule",
    "MiniLink",
    "RecordedRequest",
    "SandboxState",
    "ShortKey",
    "Ticket",
]

#: The AppID of the account every fresh :class:`SandboxState` has.
DEFAULT_APPID: Final = "wx5a4db0c0ffee0001"
#: The AppSecret of the default account.
DEFAULT_SECRET: Final = "sandbox0secret0sandbox0secret000"
#: Pages of the default account's released Mini Program; the first is the home page.
DEFAULT_PAGES: Final = ("pages/index/index", "pages/detail/detail", "pages/user/user")

#: Token lifetime (s) and the overlap during which a superseded token still works (s).
TOKEN_TTL: Final = 7200
TOKEN_OVERLAP: Final = 300

_BASE62: Final = string.digits + string.ascii_letters


@attrs.define
class IssuedToken:
    """An access token the sandbox issued.

    Attributes:
        value: the token string.
        appid: the account it belongs to.
        kind: ``"token"`` (``cgi-bin/token``) or ``"stable_token"``.
        issued_at: virtual Unix time of issue.
        expires_at: virtual Unix time after which it is rejected.
        superseded: true once a newer token replaced it (then it answers 40001, not 42001).
    """

    value: str
    appid: str
    kind: str
    issued_at: float
    expires_at: float
    superseded: bool = False


@attrs.define
class Ticket:
    """A ``qrcode/create`` ticket.

    Attributes:
        ticket: the base64-like ticket (contains ``+``, ``/`` and ``=``).
        url: the ``http://weixin.qq.com/q/...`` content the QR image encodes.
        appid: the issuing account.
        action_name: ``QR_SCENE`` / ``QR_STR_SCENE`` / ``QR_LIMIT_SCENE`` / ``QR_LIMIT_STR_SCENE``.
        scene: the ``scene_id`` or ``scene_str``.
        created_at: virtual Unix time of creation.
        expires_at: virtual expiry, ``None`` for permanent codes.
    """

    ticket: str
    url: str
    appid: str
    action_name: str
    scene: int | str
    created_at: float
    expires_at: float | None


@attrs.define
class ShortKey:
    """A ``shorten/gen`` short key and its data."""

    short_key: str
    appid: str
    long_data: str
    created_at: float
    expires_at: float


@attrs.define
class JumpRule:
    """A ``qrcodejump`` rule (either family).

    Attributes:
        prefix: the link prefix.
        path: the Mini Program page it opens.
        state: 1 unpublished, 2 published.
        permit_sub_rule: ordinary rules only (1 or 2).
        open_version: ordinary rules only (1 develop, 2 trial, 3 release).
        debug_url: ordinary rules only, at most 5 test links under the prefix.
        appid: service-account rules only: the target Mini Program.
    """

    prefix: str
    path: str
    state: int = 1
    permit_sub_rule: int | None = None
    open_version: int | None = None
    debug_url: list[str] = attrs.field(factory=list)
    appid: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The rule as ``qrcodejumpget`` lists it."""
        if self.appid is not None:
            return {"prefix": self.prefix, "path": self.path, "state": self.state}
        return {
            "prefix": self.prefix,
            "permit_sub_rule": self.permit_sub_rule,
            "path": self.path,
            "open_version": self.open_version,
            "debug_url": list(self.debug_url),
            "state": self.state,
        }


@attrs.define
class MiniLink:
    """A Mini Program link the sandbox generated (URL Scheme, NFC scheme, URL Link, Short Link).

    Attributes:
        link: the link as handed out (``weixin://dl/business/?t=...``,
            ``https://wxaurl.cn/...``, ``#小程序://...``).
        kind: ``"scheme"``, ``"nfc_scheme"``, ``"url_link"`` or ``"short_link"``.
        appid: the Mini Program it opens.
        path: the page (``""`` = home page); for Short Links the page part of ``page_url``.
        query: the query the page receives.
        env_version: ``release``, ``trial`` or ``develop``.
        created_at: virtual Unix time of generation.
        expires_at: virtual Unix expiry; ``None`` for permanent links (NFC, permanent Short
            Links).
        cloud_base: a URL Link's ``cloud_base`` object, as sent.
        title: a Short Link's page title (as shown: cut to 20 characters plus ``...``).
        model_id, sn: an NFC scheme's device.
    """

    link: str
    kind: str
    appid: str
    path: str
    query: str
    env_version: str
    created_at: float
    expires_at: float | None
    cloud_base: dict[str, Any] | None = None
    title: str = ""
    model_id: str = ""
    sn: str = ""


def _default_daily_limits() -> dict[str, int]:
    # Official quota table (reference §1, §2, §3): the calls a day before 45009.
    return {
        "cgi-bin/token": 2000,
        "cgi-bin/stable_token": 500_000,
        "cgi-bin/qrcode/create": 100_000,
        "wxa/genwxashortlink": 10_000_000,  # links.md §7
    }


@attrs.define
class Account:
    """One emulated WeChat account (Official Account and Mini Program in one).

    The defaults describe a healthy, verified organisation account with a released Mini
    Program and full quotas; every failure state is opt-in.

    Attributes:
        appid, secret: the credentials.
        personal: a personal-type Mini Program (jump rules answer 85075).
        released: the Mini Program has a released version (False: publish answers 85074 and
            ``getwxacodeunlimit`` with ``check_path`` answers 41030).
        pages: pages of the released version; ``pages[0]`` is the home page.
        ip_whitelist: when not ``None``, token fetches from other client IPs answer 40164.
        secret_frozen: the AppSecret is frozen (token fetches answer 40243).
        daily_limits: endpoint -> calls per Beijing day before 45009 (missing = unlimited).
        permanent_qrcode_limit: permanent QR codes per account (45029 beyond).
        wxacode_limit: lifetime codes from getwxacode + createwxaqrcode (45029 beyond).
        unlimited_per_minute: getwxacodeunlimit calls per minute.
        unlimited_rate_errcode: errcode for that limit: 45011 (current) or 45009 (legacy doc).
        jump_per_second: qrcodejump* calls per second across the family (44990 beyond).
        jump_rules_limit: rules per family (85073 beyond).
        jump_publish_quota: publishes per month (886000 beyond).
        clear_quota_limit: clear_quota + clear_quota/v2 calls per month (48006 beyond).
        clear_api_quota_limit: openapi/quota/clear calls per month (45009 beyond).
        callback_url: the push URL configured in the console (``callback/check`` resolves
            and "pings" it; ``None``: none configured, 40201).
        stable_force_refresh_limit: forced stable_token refreshes per day (45009 beyond).
        qrcodejump_open: the ``qrcodejump_open`` flag ``qrcodejumpget`` reports.
        links_per_second: link generations (scheme + NFC + URL Link) per virtual second
            (44990 beyond; links.md §2).
        links_daily_limit: encrypted schemes + NFC schemes + URL Links generated per Beijing
            day (44993 beyond; 500,000).
        permanent_short_link_limit: permanent Short Links in the account's lifetime (85400).
        link_visit_quota: openings of schemes and URL Links per day (``queryscheme`` with
            ``query_type=1`` reports what is left; 85406 once it is used up).
        link_expiry_out_of_range: ``"reject"`` answers 85401 to an expiry outside 1 min .. 30
            days (the error table) or ``"clamp"`` gives 30 days (the 2022 notice).
        short_links_allowed: the category may use Short Links (False: 43104).
        cloud_base_enabled: cloud development is on (False: ``cloud_base`` answers 85088).
        nickname: the Mini Program's name, shown in Short Links.
    """

    appid: str
    secret: str
    personal: bool = False
    released: bool = True
    pages: list[str] = attrs.field(factory=lambda: list(DEFAULT_PAGES))
    ip_whitelist: list[str] | None = None
    secret_frozen: bool = False
    daily_limits: dict[str, int] = attrs.field(factory=_default_daily_limits)
    permanent_qrcode_limit: int = 100_000
    wxacode_limit: int = 100_000
    unlimited_per_minute: int = 5000
    unlimited_rate_errcode: int = 45011
    jump_per_second: int = 5
    jump_rules_limit: int = 100
    jump_publish_quota: int = 100
    clear_quota_limit: int = 10
    clear_api_quota_limit: int = 50
    callback_url: str | None = "https://wxqr-sandbox.example/wechat"
    stable_force_refresh_limit: int = 20
    qrcodejump_open: int = 1
    links_per_second: int = 100
    links_daily_limit: int = 500_000
    permanent_short_link_limit: int = 100_000
    link_visit_quota: int = 3_000_000
    link_expiry_out_of_range: str = "reject"
    short_links_allowed: bool = True
    cloud_base_enabled: bool = True
    nickname: str = "小程序示例"

    # -- runtime data (what the account has done so far) -------------------------------------
    #: permanent QR codes created so far
    permanent_qrcodes: int = attrs.field(default=0, kw_only=True)
    #: codes generated by getwxacode + createwxaqrcode so far (the ``Num-Used`` header)
    wxacode_used: int = attrs.field(default=0, kw_only=True)
    #: ordinary jump rules, by prefix, in add order
    jump_rules: dict[str, JumpRule] = attrs.field(factory=dict, kw_only=True)
    #: service-account jump rules, by (Mini Program appid, prefix), in add order
    sa_jump_rules: dict[tuple[str, str], JumpRule] = attrs.field(factory=dict, kw_only=True)
    #: (file_name, file_content) of the jump-rule verification file
    jump_file: tuple[str, str] | None = attrs.field(default=None, kw_only=True)
    #: counter name -> (period key, count), for daily/monthly/minute/second windows
    usage: dict[str, tuple[object, int]] = attrs.field(factory=dict, kw_only=True)
    #: token kind -> issued tokens, newest last
    tokens: dict[str, list[IssuedToken]] = attrs.field(factory=dict, kw_only=True)
    #: virtual time of the last forced stable_token refresh
    last_force_refresh: float | None = attrs.field(default=None, kw_only=True)
    #: permanent Short Links generated so far (85400 at ``permanent_short_link_limit``)
    permanent_short_links: int = attrs.field(default=0, kw_only=True)

    def used(self, name: str, period: object) -> int:
        """How often counter ``name`` was bumped during ``period`` (a day, month, minute...)."""
        stored = self.usage.get(name)
        return stored[1] if stored is not None and stored[0] == period else 0

    def bump(self, name: str, period: object) -> int:
        """Count one more use of ``name`` in ``period``; return the new count."""
        count = self.used(name, period) + 1
        self.usage[name] = (period, count)
        return count

    def current_token(self, kind: str = "stable_token") -> IssuedToken | None:
        """The newest token of ``kind`` (``"stable_token"`` or ``"token"``), if any."""
        issued = self.tokens.get(kind)
        return issued[-1] if issued else None


@attrs.define
class RecordedRequest:
    """One request the sandbox received, recorded as-is (token and secret included).

    Attributes:
        method, path, endpoint: e.g. ``"POST"``, ``"/wxa/getwxacode"``, ``"wxa/getwxacode"``.
        query: decoded query parameters (first value of each).
        body: the raw request body.
        json: the body parsed as a JSON object, or ``None``.
        client: the client IP, if the server reported one.
        time: virtual time of arrival.
        status: the HTTP status answered (``None`` if the connection was dropped).
        errcode: the ``errcode`` answered, if the answer was a JSON error.
        fault: the kind of fault injected into this request, if any.
    """

    method: str
    path: str
    endpoint: str
    query: dict[str, str]
    body: bytes
    json: dict[str, Any] | None
    client: str | None
    time: float
    status: int | None = None
    errcode: int | None = None
    fault: str | None = None


@attrs.define
class RidRecord:
    """What ``openapi/rid/get`` reports about an error answer."""

    rid: str
    appid: str | None
    invoke_time: int
    request_url: str
    request_body: str
    response_body: str
    client_ip: str


class SandboxState:
    """The whole emulated WeChat: accounts, issued objects, counters, clock and fault plan.

    Args:
        seed: seeds every random choice (tokens, tickets, keys, rids, fault probabilities), so
            a run is reproducible. ``None`` picks a random seed.
        clock: the :class:`VirtualClock`; default: a clock starting at the real time.
        default_account: create the healthy default account (:data:`DEFAULT_APPID`).

    Attributes:
        clock: the virtual clock.
        faults: the :class:`~wxqr.sandbox.FaultPlan` (``state.faults.add(...)``).
        accounts: appid -> :class:`Account`.
        requests: every :class:`RecordedRequest`, in arrival order.
        calls: endpoint -> requests received (faulted ones included).
        token_fetches: ``"token"`` / ``"stable_token"`` -> requests to that token endpoint.
        tokens_issued: ``"token"`` / ``"stable_token"`` -> new tokens actually issued.
        in_flight / max_in_flight: endpoint -> requests being served now / at most at once.
        tickets, short_keys, tokens, rids: what was issued, by its string.
        lock: the re-entrant lock handlers run under.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        clock: VirtualClock | None = None,
        default_account: bool = True,
    ) -> None:
        from ._faults import FaultPlan

        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**63)
        self.clock = clock if clock is not None else VirtualClock()
        self.lock = threading.RLock()
        # Two streams, so adding a fault does not change the ids a run generates and vice versa.
        self.random = random.Random(f"{self.seed}:ids")
        self.faults: FaultPlan = FaultPlan(random.Random(f"{self.seed}:faults"), self.lock)
        self.accounts: dict[str, Account] = {}
        self.requests: list[RecordedRequest] = []
        self.calls: Counter[str] = Counter()
        self.token_fetches: Counter[str] = Counter()
        self.tokens_issued: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.tokens: dict[str, IssuedToken] = {}
        self.tickets: dict[str, Ticket] = {}
        self.short_keys: dict[str, ShortKey] = {}
        self.rids: dict[str, RidRecord] = {}
        #: generated Mini Program links, by the link string
        self.links: dict[str, MiniLink] = {}
        #: where scans are pushed (``configure_push``), and every push made (``scan``)
        self.push: PushConfig | None = None
        self.pushes: list[Push] = []
        if default_account:
            self.add_account(DEFAULT_APPID, DEFAULT_SECRET)

    # -- accounts ------------------------------------------------------------------------------
    def add_account(self, appid: str, secret: str, **settings: Any) -> Account:
        """Add (or replace) an account; ``settings`` are :class:`Account` attributes.

        Example: ``state.add_account("wx_personal", "s3cret", personal=True, released=False)``.
        """
        with self.lock:
            account = Account(appid, secret, **settings)
            self.accounts[appid] = account
            return account

    def account(self, appid: str = DEFAULT_APPID) -> Account:
        """The account with ``appid`` (the default account when omitted); KeyError if absent."""
        return self.accounts[appid]

    @property
    def default_account(self) -> Account:
        """The :data:`DEFAULT_APPID` account."""
        return self.accounts[DEFAULT_APPID]

    # -- tokens ---------------------------------------------------------------------------------
    def issue_token(self, appid: str = DEFAULT_APPID, *, kind: str = "stable_token") -> str:
        """Issue a fresh token for ``appid`` without an HTTP round trip (for test setup).

        The previous token of the same kind stays valid for 300 s more, as after a
        ``cgi-bin/token`` fetch.
        """
        with self.lock:
            return self._issue_token(self.accounts[appid], kind, overlap=True).value

    def revoke_tokens(self, appid: str = DEFAULT_APPID) -> None:
        """Invalidate every token of ``appid`` now (they answer 40001), e.g. to simulate a
        token refreshed by another system."""
        with self.lock:
            for issued in self.accounts[appid].tokens.values():
                for token in issued:
                    token.superseded = True
                    token.expires_at = min(token.expires_at, self.clock.now())

    def _issue_token(self, account: Account, kind: str, *, overlap: bool) -> IssuedToken:
        now = self.clock.now()
        issued = account.tokens.setdefault(kind, [])
        cutoff = now + TOKEN_OVERLAP if overlap else now
        for old in issued:
            if old.expires_at > cutoff:
                # Cut short by the new token: past the cutoff it is "not latest" (40001),
                # whereas a token that reaches its natural end is "expired" (42001).
                old.expires_at = cutoff
                old.superseded = True
        value = self._token_string()
        token = IssuedToken(value, account.appid, kind, now, now + TOKEN_TTL)
        issued.append(token)
        del issued[:-4]  # superseded tokens older than the overlap window are never valid again
        self.tokens[value] = token
        self.tokens_issued[kind] += 1
        return token

    # -- random identifiers --------------------------------------------------------------------
    def random_string(self, length: int, alphabet: str = _BASE62) -> str:
        """``length`` characters drawn from ``alphabet`` with the seeded generator."""
        return "".join(self.random.choice(alphabet) for _ in range(length))

    def _token_string(self) -> str:
        # Real tokens look like "86_" + ~130 base64url-ish characters; callers must allow 512.
        alphabet = _BASE62 + "-_"
        return f"{self.random.randint(70, 99)}_{self.random_string(136, alphabet)}"

    def new_rid(self) -> str:
        """A request id: the first group is the hex virtual Unix time, then 2x 8 random hex."""
        hexdigits = "0123456789abcdef"
        now = int(self.clock.now()) & 0xFFFFFFFF
        return f"{now:08x}-{self.random_string(8, hexdigits)}-{self.random_string(8, hexdigits)}"

    # -- Mini Program links -------------------------------------------------------------------
    def open_link(self, link: str) -> MiniLink:
        """Simulate a user opening a scheme or URL Link: spends one of today's visits.

        Raises:
            KeyError: the link was never generated.
            RuntimeError: the link has expired, or today's visit quota is used up (85406).
        """
        with self.lock:
            entry = self.links[link.split("&cq=")[0].split("?cq=")[0]]
            account = self.accounts[entry.appid]
            if entry.expires_at is not None and self.clock.now() >= entry.expires_at:
                raise RuntimeError("the link has expired")
            day = self.clock.day()
            if account.used("links:visits", day) >= account.link_visit_quota:
                raise RuntimeError("daily visit limit (85406)")
            account.bump("links:visits", day)
            return entry

    # -- scan pushes (``_push.py``) --------------------------------------------------------------
    def configure_push(self, url: str = "http://receiver/", **options: Any) -> PushConfig:
        """Configure the account's server URL: where :meth:`scan` pushes events.

        Args:
            url: the server URL; with ``app=`` (an in-process ASGI app) only its path is used.
            options: :class:`~wxqr.sandbox.PushConfig` attributes: ``token`` (required),
                ``app``, ``encoding_aes_key``, ``mode`` (``plain``/``compatible``/``safe``),
                ``appid`` (default: the default account's), ``account``, ``answer_timeout``,
                ``deliveries``, ``duplicate``.

        Raises:
            ValidationError: an option is out of range (e.g. ``safe`` mode without a key).
        """
        from ._push import PushConfig

        options.setdefault("appid", DEFAULT_APPID)
        with self.lock:
            self.push = PushConfig(url=url, **options)
            return self.push

    async def scan(
        self,
        ticket: Any,
        *,
        openid: str | None = None,
        following: bool | None = None,
        follow: bool = True,
    ) -> Push | None:
        """A user scans the code ``ticket``: push what WeChat would (see ``wxqr.sandbox._push``).

        ``subscribe`` + ``qrscene_<scene>`` for a non-follower who follows, ``SCAN`` + scene for
        a follower; nothing for an unknown or expired ticket or (``follow=False``) a
        non-follower who does not follow. Returns the :class:`~wxqr.sandbox.Push` or ``None``.
        """
        from ._push import scan

        return await scan(self, ticket, openid=openid, following=following, follow=follow)

    # -- test conveniences ---------------------------------------------------------------------
    def reset_counters(self) -> None:
        """Forget recorded requests and call counters (issued objects are kept)."""
        with self.lock:
            self.requests.clear()
            self.calls.clear()
            self.token_fetches.clear()
            self.tokens_issued.clear()
            self.max_in_flight.clear()

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The recorded requests to ``endpoint`` (e.g. ``"wxa/getwxacode"``)."""
        endpoint = endpoint.strip("/")
        return [r for r in self.requests if r.endpoint == endpoint]
