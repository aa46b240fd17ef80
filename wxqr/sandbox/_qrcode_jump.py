"""``cgi-bin/wxopen/qrcodejump{add,get,delete,publish,download}`` (reference §5).

Two rule families share the endpoints; a body carrying ``appid`` addresses the service-account
family (rules for ``http://weixin.qq.com/q/...`` codes opening Mini Program ``appid``), any other
body the token's own ordinary link rules. Checks, in order:

* every call: more than ``Account.jump_per_second`` (5) calls in one virtual second across the
  family → 44990; personal-type account → 85075 (add, delete, publish, download).
* add: prefix not an http(s) URL (service-account form: not under ``http://weixin.qq.com/q/``)
  → 85066; prefix owned by another account → 85072; ``permit_sub_rule`` not 1/2,
  ``open_version`` not 1/2/3, empty ``path``, ``is_edit`` not 0/1, more than 5 ``debug_url``
  → 40097; a ``debug_url`` not under the prefix → 85068; ``is_edit=0`` on an existing prefix →
  85071; ``is_edit=1`` on a missing or published rule → 40097; a full list (100) → 85073.
* delete / publish of an unknown prefix → 40097 (publish takes only ``prefix`` for either
  family); publish: unreleased Mini Program → 85074;
  monthly quota (``Account.jump_publish_quota``, default 100) used up → 886000.
* get (service-account form): ``get_type`` 0 (latest 10,000), 1 (``prefix_list`` ≤ 200) or 2
  (``page_num`` ≥ 1, ``page_size`` 1..200); anything else → 40097.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ._http import Call, Reject, Response, as_int, json_response
from ._state import Account, JumpRule

__all__ = ["handle_add", "handle_delete", "handle_download", "handle_get", "handle_publish"]

SA_PREFIX = "http://weixin.qq.com/q/"
_OK: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}


def _account(call: Call, *, personal_forbidden: bool = True) -> Account:
    account = call.account
    assert account is not None
    second = int(call.now)
    if account.used("qrcodejump", second) >= account.jump_per_second:
        raise Reject(44990)
    account.bump("qrcodejump", second)
    if personal_forbidden and account.personal:
        raise Reject(85075)
    return account


def _family(call: Call, account: Account) -> tuple[dict[Any, JumpRule], str | None]:
    appid = call.body.get("appid")
    if appid is None:
        return account.jump_rules, None
    if not isinstance(appid, str) or not appid:
        raise Reject(40097)
    return account.sa_jump_rules, appid


def _key(appid: str | None, prefix: str) -> Any:
    return prefix if appid is None else (appid, prefix)


def _prefix(call: Call) -> str:
    prefix = call.body.get("prefix")
    if not isinstance(prefix, str) or not prefix:
        raise Reject(40097)
    return prefix


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def handle_add(call: Call) -> Response:
    """``qrcodejumpadd``: add or edit a rule."""
    account = _account(call)
    rules, appid = _family(call, account)
    prefix = call.body.get("prefix")
    if not isinstance(prefix, str) or not _is_http_url(prefix):
        raise Reject(85066)
    if appid is not None and not prefix.startswith(SA_PREFIX):
        raise Reject(85066)
    for other in call.state.accounts.values():
        if other is not account and (prefix in other.jump_rules):
            raise Reject(85072)
    path = call.body.get("path")
    is_edit = as_int(call.body.get("is_edit", 0))
    if not isinstance(path, str) or not path or is_edit not in (0, 1):
        raise Reject(40097)
    rule = JumpRule(prefix=prefix, path=path, appid=appid)
    if appid is None:
        permit = as_int(call.body.get("permit_sub_rule"))
        version = as_int(call.body.get("open_version"))
        debug = call.body.get("debug_url", [])
        if permit not in (1, 2) or version not in (1, 2, 3):
            raise Reject(40097)
        if not isinstance(debug, list) or len(debug) > 5:
            raise Reject(40097)
        if not all(isinstance(url, str) and url.startswith(prefix) for url in debug):
            raise Reject(85068)
        rule.permit_sub_rule, rule.open_version, rule.debug_url = permit, version, list(debug)
    key = _key(appid, prefix)
    existing = rules.get(key)
    if is_edit == 0:
        if existing is not None:
            raise Reject(85071)
        if sum(1 for k in rules if appid is None or k[0] == appid) >= account.jump_rules_limit:
            raise Reject(85073)
        rules[key] = rule
    else:
        if existing is None or existing.state == 2:
            raise Reject(40097)
        rules[key] = rule
    return json_response(dict(_OK))


def handle_get(call: Call) -> Response:
    """``qrcodejumpget``: list the rules, with the switch, the publish quota and counts."""
    account = _account(call, personal_forbidden=False)
    rules, appid = _family(call, account)
    if appid is None:
        listed = list(rules.values())
        total = len(listed)
    else:
        mine = [rule for (owner, _), rule in rules.items() if owner == appid]
        total = len(mine)
        get_type = as_int(call.body.get("get_type", 0))
        if get_type == 0:
            listed = mine[-10_000:]
        elif get_type == 1:
            wanted = call.body.get("prefix_list")
            if not isinstance(wanted, list) or not 1 <= len(wanted) <= 200:
                raise Reject(40097)
            listed = [rule for rule in mine if rule.prefix in wanted]
        elif get_type == 2:
            page_num = as_int(call.body.get("page_num"))
            page_size = as_int(call.body.get("page_size"))
            if page_num is None or page_num < 1 or page_size is None:
                raise Reject(40097)
            if not 1 <= page_size <= 200:
                raise Reject(40097)
            listed = mine[(page_num - 1) * page_size : page_num * page_size]
        else:
            raise Reject(40097)
    quota_left = account.jump_publish_quota - account.used(
        "qrcodejump_publish", call.state.clock.month()
    )
    return json_response(
        {
            **_OK,
            "rule_list": [rule.as_json() for rule in listed],
            "qrcodejump_open": account.qrcodejump_open,
            "qrcodejump_pub_quota": max(0, quota_left),
            "list_size": len(listed),
            "total_count": total,
        }
    )


def handle_delete(call: Call) -> Response:
    """``qrcodejumpdelete``: remove a rule (published or not)."""
    account = _account(call)
    rules, appid = _family(call, account)
    key = _key(appid, _prefix(call))
    if key not in rules:
        raise Reject(40097)
    del rules[key]
    return json_response(dict(_OK))


def handle_publish(call: Call) -> Response:
    """``qrcodejumppublish``: publish a rule (consumes the monthly publish quota).

    The body is ``{prefix}`` for both families (reference §5.4): a prefix that is not one of the
    account's ordinary rules is looked up among its service-account rules (an ``appid`` in the
    body, which WeChat does not document here, narrows that search).
    """
    account = _account(call)
    rules, appid = _family(call, account)
    prefix = _prefix(call)
    rule = rules.get(_key(appid, prefix))
    if rule is None and appid is None:
        rule = next((r for (_, p), r in account.sa_jump_rules.items() if p == prefix), None)
    if rule is None:
        raise Reject(40097)
    if not account.released:
        raise Reject(85074)
    month = call.state.clock.month()
    if account.used("qrcodejump_publish", month) >= account.jump_publish_quota:
        raise Reject(886000)
    account.bump("qrcodejump_publish", month)
    rule.state = 2
    return json_response(dict(_OK))


def handle_download(call: Call) -> Response:
    """``qrcodejumpdownload``: the verification file to host under the prefix."""
    account = _account(call)
    if account.jump_file is None:
        rng = call.state
        account.jump_file = (
            rng.random_string(10) + ".txt",
            rng.random_string(32, "0123456789abcdef"),
        )
    file_name, file_content = account.jump_file
    return json_response({**_OK, "file_name": file_name, "file_content": file_content})
