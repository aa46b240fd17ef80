"""Mini Program links: ``wxa/generatescheme``, ``queryscheme``, ``generatenfcscheme``,
``generate_urllink``, ``query_urllink`` and ``genwxashortlink`` (reference/links.md).

Links look like the real ones (§8): ``weixin://dl/business/?t=<11 base62>``,
``https://wxaurl.cn/<11 base62>`` and ``#小程序://<name>/<title>/<15 base62>``. Each is stored in
``state.links`` with its create and expire times on the virtual clock. Checks, in order:

* generators (scheme, NFC scheme, URL Link): more than ``Account.links_per_second`` (100)
  calls in one virtual second across the three → 44990; unreleased Mini Program
  (``Account.released=False``) → 85079;
* ``path`` not a released page (``Account.pages``; a leading ``/`` is allowed, ``""`` is the
  home page) or with a query → 40165; ``query`` over 1024 characters, with characters outside
  ``0-9a-zA-Z!#$&'()*+,/:;=?@-._~%`` or not ``k1=v1&k2=v2`` → 40212; ``env_version`` not
  release/trial/develop → 85402; a ``jump_wxa`` that is not an object → 40097;
* expiry (scheme, URL Link): ``expire_type`` 0 (default) or 1, else 40097; type 0 with
  ``expire_time`` not 60 s .. 30 days ahead in Unix seconds, or type 1 with ``expire_interval``
  not 1..30 → 85401 (``Account.link_expiry_out_of_range="clamp"`` gives 30 days instead, as the
  2022 notice says); no ``expire_time`` → 30 days. ``is_expire`` is ignored (fixed since 2022);
* NFC: ``model_id`` missing or empty → 9800003; NFC schemes do not expire;
* URL Link ``cloud_base`` without ``env`` → 40097; cloud development off
  (``Account.cloud_base_enabled=False``) → 85088;
* more than ``Account.links_daily_limit`` (500,000) generated in a Beijing day → 44993;
* queries: ``query_type`` not 0/1 → 40097; 1 answers ``quota_info.remain_visit_quota``
  (``Account.link_visit_quota`` minus today's :meth:`SandboxState.open_link` visits); 0 looks
  the link up (a ``&cq=`` / ``?cq=`` suffix is reported as the query) → 85403 when unknown or
  another account's; queryscheme answers 85406 once today's visits are used up; a plaintext
  ``weixin://dl/business/?appid=...&path=...`` scheme of the account's released page is
  described without times, any other → 85405;
* Short Link: ``Account.short_links_allowed=False`` → 43104; unreleased → 85079; ``page_url``
  missing, over 1024 characters or not a released page → 40066; ``page_title`` not a string →
  40225; ``is_permanent`` not a boolean → 40097; more than
  ``Account.permanent_short_link_limit`` (100,000) permanent ones → 85400; 10,000,000 a day
  (``Account.daily_limits``) → 45009. Short-term ones expire after 30 days.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from ._http import Call, Reject, Response, as_bool, as_int, json_response
from ._state import Account, MiniLink

__all__ = [
    "handle_generate_nfc_scheme",
    "handle_generate_scheme",
    "handle_generate_short_link",
    "handle_generate_url_link",
    "handle_query_scheme",
    "handle_query_url_link",
]

DAY: Final = 86400
MAX_DAYS: Final = 30
MAX_QUERY: Final = 1024
TITLE_SHOWN: Final = 20
SCHEME_PREFIX: Final = "weixin://dl/business/?t="
PLAINTEXT_PREFIX: Final = "weixin://dl/business/?"
URL_LINK_PREFIX: Final = "https://wxaurl.cn/"
_ENV_VERSIONS: Final = ("release", "trial", "develop")
_QUERY_CHARS: Final = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~%]*")
_PAIR: Final = re.compile(r"[^=&]+=[^&]*")
_OK: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}


def _generator_account(call: Call) -> Account:
    account = call.account
    assert account is not None
    second = int(call.now)
    if account.used("links:second", second) >= account.links_per_second:
        raise Reject(44990)
    account.bump("links:second", second)
    if not account.released:
        raise Reject(85079)
    return account


def _count_generation(call: Call, account: Account) -> None:
    day = call.state.clock.day()
    if account.used("links:generated", day) >= account.links_daily_limit:
        raise Reject(44993)
    account.bump("links:generated", day)


def _page(account: Account, path: object) -> str:
    if path is None or path == "":
        return ""
    if not isinstance(path, str) or "?" in path or path.lstrip("/") not in account.pages:
        raise Reject(40165)
    return path


def _query(query: object) -> str:
    if query is None or query == "":
        return ""
    if not isinstance(query, str) or len(query) > MAX_QUERY:
        raise Reject(40212)
    if not _QUERY_CHARS.fullmatch(query) or not all(_PAIR.fullmatch(p) for p in query.split("&")):
        raise Reject(40212)
    return query


def _env_version(value: object) -> str:
    if value is None:
        return "release"
    if value not in _ENV_VERSIONS:
        raise Reject(85402)
    return str(value)


def _expiry(call: Call, account: Account) -> float:
    """The virtual expiry time the body asks for (links.md §2, §8)."""
    body = call.body
    kind = as_int(body.get("expire_type", 0))
    longest = call.now + MAX_DAYS * DAY
    clamp = account.link_expiry_out_of_range == "clamp"
    if kind == 0:
        raw = body.get("expire_time")
        if raw is None:
            return longest
        when = as_int(raw)
        if when is None or not call.now + 60 <= when <= longest:
            if clamp:
                return longest
            raise Reject(85401)
        return float(when)
    if kind == 1:
        days = as_int(body.get("expire_interval"))
        if days is None or not 1 <= days <= MAX_DAYS:
            if clamp:
                return longest
            raise Reject(85401)
        return call.now + days * DAY
    raise Reject(40097)


def _ticket(call: Call, prefix: str, length: int) -> str:
    state = call.state
    while True:
        link = prefix + state.random_string(length)
        if link not in state.links:
            return link


def _store(call: Call, link: MiniLink) -> MiniLink:
    call.state.links[link.link] = link
    return link


def _jump_wxa(call: Call, account: Account) -> tuple[str, str, str]:
    target = call.body.get("jump_wxa", {})
    if not isinstance(target, dict):
        raise Reject(40097)
    return (
        _page(account, target.get("path")),
        _query(target.get("query")),
        _env_version(target.get("env_version")),
    )


def handle_generate_scheme(call: Call) -> Response:
    """``POST wxa/generatescheme`` ``{jump_wxa{path, query, env_version}, expire_*}``."""
    account = _generator_account(call)
    path, query, env = _jump_wxa(call, account)
    expires_at = _expiry(call, account)
    _count_generation(call, account)
    link = _ticket(call, SCHEME_PREFIX, 11)
    _store(call, MiniLink(link, "scheme", account.appid, path, query, env, call.now, expires_at))
    return json_response({**_OK, "openlink": link})


def handle_generate_nfc_scheme(call: Call) -> Response:
    """``POST wxa/generatenfcscheme`` ``{jump_wxa, model_id, sn}``: never expires."""
    account = _generator_account(call)
    path, query, env = _jump_wxa(call, account)
    model_id, sn = call.body.get("model_id"), call.body.get("sn", "")
    if not isinstance(model_id, str) or not model_id or not isinstance(sn, str):
        raise Reject(9800003)
    _count_generation(call, account)
    link = _ticket(call, SCHEME_PREFIX, 11)
    entry = MiniLink(link, "nfc_scheme", account.appid, path, query, env, call.now, None)
    entry.model_id, entry.sn = model_id, sn
    _store(call, entry)
    return json_response({**_OK, "openlink": link})


def handle_generate_url_link(call: Call) -> Response:
    """``POST wxa/generate_urllink`` ``{path, query, env_version, expire_*, cloud_base}``."""
    account = _generator_account(call)
    body = call.body
    path, query = _page(account, body.get("path")), _query(body.get("query"))
    env = _env_version(body.get("env_version"))
    cloud_base = body.get("cloud_base")
    if cloud_base is not None:
        if not isinstance(cloud_base, dict) or not cloud_base.get("env"):
            raise Reject(40097)
        if not account.cloud_base_enabled:
            raise Reject(85088)
    expires_at = _expiry(call, account)
    _count_generation(call, account)
    link = _ticket(call, URL_LINK_PREFIX, 11)
    entry = MiniLink(link, "url_link", account.appid, path, query, env, call.now, expires_at)
    entry.cloud_base = dict(cloud_base) if cloud_base is not None else None
    _store(call, entry)
    return json_response({**_OK, "url_link": link})


def _remaining_visits(call: Call, account: Account) -> int:
    return max(0, account.link_visit_quota - account.used("links:visits", call.state.clock.day()))


def _query_type(call: Call) -> int:
    kind = as_int(call.body.get("query_type", 0))
    if kind not in (0, 1):
        raise Reject(40097)
    return kind


def _info(entry: MiniLink, cq: str | None) -> dict[str, Any]:
    return {
        "appid": entry.appid,
        "path": entry.path,
        "query": unquote(cq) if cq is not None else entry.query,
        "create_time": int(entry.created_at),
        "expire_time": 0 if entry.expires_at is None else int(entry.expires_at),
        "env_version": entry.env_version,
    }


def _lookup(call: Call, account: Account, link: object, sep: str, kinds: tuple[str, ...]) -> Any:
    if not isinstance(link, str) or not link:
        raise Reject(40097)
    base, found, cq = link.partition(sep)
    entry = call.state.links.get(base)
    if entry is None or entry.appid != account.appid or entry.kind not in kinds:
        raise Reject(85403)
    return entry, (cq if found else None)


def handle_query_scheme(call: Call) -> Response:
    """``POST wxa/queryscheme`` ``{scheme, query_type}``."""
    account = call.account
    assert account is not None
    left = _remaining_visits(call, account)
    if _query_type(call) == 1:
        return json_response({**_OK, "quota_info": {"remain_visit_quota": left}})
    if left == 0:
        raise Reject(85406)
    scheme = call.body.get("scheme")
    if isinstance(scheme, str) and scheme.startswith(PLAINTEXT_PREFIX + "appid="):
        params = parse_qs(urlsplit(scheme).query)
        appid, path = params.get("appid", [""])[0], params.get("path", [""])[0]
        if appid != account.appid or path.lstrip("/") not in account.pages:
            raise Reject(85405)
        info = {
            "appid": appid,
            "path": path,
            "query": params.get("query", [""])[0],
            "env_version": params.get("env_version", ["release"])[0],
        }
        return json_response({**_OK, "scheme_info": info})
    entry, cq = _lookup(call, account, scheme, "&cq=", ("scheme", "nfc_scheme"))
    return json_response({**_OK, "scheme_info": _info(entry, cq)})


def handle_query_url_link(call: Call) -> Response:
    """``POST wxa/query_urllink`` ``{url_link, query_type}``."""
    account = call.account
    assert account is not None
    if _query_type(call) == 1:
        left = _remaining_visits(call, account)
        return json_response({**_OK, "quota_info": {"remain_visit_quota": left}})
    entry, cq = _lookup(call, account, call.body.get("url_link"), "?cq=", ("url_link",))
    info = _info(entry, cq)
    if entry.cloud_base is not None:
        info["cloud_base"] = {
            "env": entry.cloud_base.get("env", ""),
            "doamin": entry.cloud_base.get("domain", ""),  # sic: the documented spelling
            "path": entry.cloud_base.get("path", ""),
            "query": entry.cloud_base.get("query", ""),
            "resource_appid": entry.cloud_base.get("resource_appid", ""),
        }
    return json_response({**_OK, "url_link_info": info})


def handle_generate_short_link(call: Call) -> Response:
    """``POST wxa/genwxashortlink`` ``{page_url, page_title, is_permanent}``."""
    account = call.account
    assert account is not None
    if not account.short_links_allowed:
        raise Reject(43104)
    if not account.released:
        raise Reject(85079)
    page_url = call.body.get("page_url")
    if not isinstance(page_url, str) or not page_url or len(page_url) > MAX_QUERY:
        raise Reject(40066)
    page, _, query = page_url.partition("?")
    if page.lstrip("/") not in account.pages:
        raise Reject(40066)
    title = call.body.get("page_title", "")
    if not isinstance(title, str):
        raise Reject(40225)
    permanent = as_bool(call.body.get("is_permanent"), False)
    if permanent is None:
        raise Reject(40097)
    if permanent:
        if account.permanent_short_links >= account.permanent_short_link_limit:
            raise Reject(85400)
        account.permanent_short_links += 1
    shown = title if len(title) <= TITLE_SHOWN else title[:TITLE_SHOWN] + "..."
    state = call.state
    while True:
        link = f"#小程序://{account.nickname}/{shown or '页面'}/{state.random_string(15)}"
        if link not in state.links:
            break
    expires_at = None if permanent else call.now + MAX_DAYS * DAY
    entry = MiniLink(
        link, "short_link", account.appid, page, query, "release", call.now, expires_at
    )
    entry.title = shown
    _store(call, entry)
    return json_response({**_OK, "link": link})
