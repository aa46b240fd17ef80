"""Quota, rid and network management (reference §9; events reference §1.8).

* ``clear_quota`` ``{appid}``: the appid must be the token's own (40013 otherwise); resets every
  daily counter (45009 limits); 10 per Beijing month (``Account.clear_quota_limit``) → 48006.
* ``clear_quota/v2`` ``{appid, appsecret}`` (JSON body, or the query string as in the official
  example), no token: appid missing 41002, appsecret missing 41004, unknown appid 40013, wrong
  secret 40125; shares the 10 a month with ``clear_quota`` (48006).
* ``openapi/quota/clear`` ``{cgi_path}``: resets one API's daily counter; 50 per Beijing month
  (``Account.clear_api_quota_limit``) → 45009, the only quota code its page lists (inferred);
  an unknown path → 76021.
* ``openapi/quota/get`` ``{cgi_path}``: ``/cgi-bin/...`` or ``/wxa/...`` path of an emulated API
  (76021 otherwise). ``used`` counts today's calls that passed the token check (every API is
  counted); ``daily_limit`` is 0 for APIs without a daily cap (then ``remain`` is 0 too).
* ``openapi/rid/get`` ``{rid}``: every error answer's rid is recorded; malformed → 76002, unknown
  → 76001, another account's → 76003, older than 7 days of virtual time → 76004.
* ``getcallbackip`` / ``get_api_domain_ip`` (GET): ``{"ip_list": [...]}`` from
  :data:`CALLBACK_IPS` / :data:`API_DOMAIN_IPS`.
* ``callback/check`` ``{action, check_operator}``: action not dns/ping/all → 40202, operator not
  CHINANET/UNICOM/CAP/DEFAULT → 40203, no ``Account.callback_url`` → 40201; otherwise one DNS
  answer and one lossless ping per address.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from ._http import Call, Reject, Response, json_response, parse_json_object
from ._state import Account

__all__ = [
    "API_DOMAIN_IPS",
    "CALLBACK_IPS",
    "handle_api_domain_ip",
    "handle_callback_check",
    "handle_clear_api_quota",
    "handle_clear_quota",
    "handle_clear_quota_v2",
    "handle_getcallbackip",
    "handle_quota_get",
    "handle_rid_get",
]

_RID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}")
#: Per-endpoint rate limits reported by quota/get: (calls, window seconds).
_RATE_LIMITS = {
    "wxa/getwxacodeunlimit": (5000, 60),
    "cgi-bin/stable_token": (10_000, 60),
}
_OK: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
#: What ``getcallbackip`` answers (the official example's addresses).
CALLBACK_IPS: tuple[str, ...] = ("106.55.206.146", "106.55.206.211")
#: What ``get_api_domain_ip`` answers (documentation-range placeholders, RFC 5737).
API_DOMAIN_IPS: tuple[str, ...] = ("203.0.113.10", "203.0.113.11", "203.0.113.12")
_ACTIONS = ("dns", "ping", "all")
_OPERATORS = ("CHINANET", "UNICOM", "CAP", "DEFAULT")


def _spend_clear(account: Account, month: object) -> None:
    # clear_quota and clear_quota/v2 share one budget (reference §9.1, §9.2).
    if account.used("clear_quota", month) >= account.clear_quota_limit:
        raise Reject(48006)
    account.bump("clear_quota", month)
    for name in [n for n in account.usage if n.startswith("daily:")]:
        del account.usage[name]


def handle_clear_quota(call: Call) -> Response:
    """``POST cgi-bin/clear_quota`` ``{appid}``."""
    account = call.account
    assert account is not None
    if call.body.get("appid") != account.appid:
        raise Reject(40013)
    _spend_clear(account, call.state.clock.month())
    return json_response(dict(_OK))


def handle_clear_quota_v2(call: Call) -> Response:
    """``POST cgi-bin/clear_quota/v2`` ``{appid, appsecret}`` (body or query), no token."""
    if call.request.method != "POST":
        raise Reject(43002)
    body = parse_json_object(call.request.body) if call.request.body.strip() else {}
    params: dict[str, Any] = {**call.request.query, **(body or {})}
    appid, secret = params.get("appid"), params.get("appsecret")
    if not appid:
        raise Reject(41002)
    if not secret:
        raise Reject(41004)
    account = call.state.accounts.get(str(appid))
    if account is None:
        raise Reject(40013)
    call.account = account
    if str(secret) != account.secret:
        raise Reject(40125)
    _spend_clear(account, call.state.clock.month())
    return json_response(dict(_OK))


def _endpoint_of(call: Call) -> str:
    from ._app import ROUTES  # the routing table knows which APIs exist

    cgi_path = call.body.get("cgi_path")
    if not isinstance(cgi_path, str) or not cgi_path.startswith("/"):
        raise Reject(76021)
    endpoint = cgi_path.strip("/")
    if endpoint not in ROUTES or endpoint == "cgi-bin/showqrcode":
        raise Reject(76021)
    return endpoint


def handle_clear_api_quota(call: Call) -> Response:
    """``POST cgi-bin/openapi/quota/clear`` ``{cgi_path}``: 50 a month."""
    account = call.account
    assert account is not None
    endpoint = _endpoint_of(call)
    month = call.state.clock.month()
    if account.used("clear_api_quota", month) >= account.clear_api_quota_limit:
        raise Reject(45009)
    account.bump("clear_api_quota", month)
    account.usage.pop(f"daily:{endpoint}", None)
    return json_response(dict(_OK))


def handle_quota_get(call: Call) -> Response:
    """``POST cgi-bin/openapi/quota/get`` ``{cgi_path}``."""
    account = call.account
    assert account is not None
    endpoint = _endpoint_of(call)
    limit = account.daily_limits.get(endpoint, 0)
    used = account.used(f"daily:{endpoint}", call.state.clock.day())
    calls, window = _RATE_LIMITS.get(endpoint, (0, 0))
    return json_response(
        {
            **_OK,
            "quota": {"daily_limit": limit, "used": used, "remain": max(0, limit - used)},
            "rate_limit": {"call_count": calls, "refresh_second": window},
            "component_rate_limit": {"call_count": calls, "refresh_second": window},
        }
    )


def handle_rid_get(call: Call) -> Response:
    """``POST cgi-bin/openapi/rid/get`` ``{rid}``."""
    account = call.account
    assert account is not None
    rid = call.body.get("rid")
    if not isinstance(rid, str) or not _RID.fullmatch(rid):
        raise Reject(76002)
    record = call.state.rids.get(rid)
    if record is None:
        raise Reject(76001)
    if record.appid != account.appid:
        raise Reject(76003)
    if call.now - record.invoke_time > 7 * 86400:
        raise Reject(76004)
    return json_response(
        {
            **_OK,
            "request": {
                "invoke_time": record.invoke_time,
                "cost_in_ms": 1,
                "request_url": record.request_url,
                "request_body": record.request_body,
                "response_body": record.response_body,
                "client_ip": record.client_ip,
            },
        }
    )


def handle_getcallbackip(call: Call) -> Response:
    """``GET cgi-bin/getcallbackip``: the push servers' addresses."""
    return json_response({"ip_list": list(CALLBACK_IPS)})


def handle_api_domain_ip(call: Call) -> Response:
    """``GET cgi-bin/get_api_domain_ip``: the addresses of api.weixin.qq.com."""
    return json_response({"ip_list": list(API_DOMAIN_IPS)})


def _address_of(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        if host == "localhost":
            return "127.0.0.1"
        # No real DNS in the emulator: a stable documentation-range address per host name.
        return f"198.51.100.{hashlib.sha256(host.encode()).digest()[0] % 254 + 1}"


def handle_callback_check(call: Call) -> Response:
    """``POST cgi-bin/callback/check`` ``{action, check_operator}``."""
    account = call.account
    assert account is not None
    action = call.body.get("action")
    operator = call.body.get("check_operator")
    if action not in _ACTIONS:
        raise Reject(40202)
    if operator not in _OPERATORS:
        raise Reject(40203)
    host = urlsplit(account.callback_url or "").hostname
    if not host:
        raise Reject(40201)
    ip = _address_of(host)
    source = "CAP" if operator == "DEFAULT" else operator
    answer: dict[str, Any] = {"dns": [], "ping": []}
    if action in ("dns", "all"):
        answer["dns"] = [{"ip": ip, "real_operator": source}]
    if action in ("ping", "all"):
        answer["ping"] = [
            {"ip": ip, "from_operator": source, "package_loss": "0%", "time": "1.024ms"}
        ]
    return json_response(answer)
