"""wxqr.login's public surface: pinned names, documented, typed errors, no hard Redis import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import wxqr
import wxqr.login

PUBLIC = [
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


def test_all_is_pinned():
    assert wxqr.login.__all__ == PUBLIC


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "LoginStatus"])
def test_every_public_class_and_method_is_documented(name):
    cls = getattr(wxqr.login, name)
    assert (inspect.getdoc(cls) or "").strip(), name
    for attr, member in vars(cls).items():
        if not attr.startswith("_") and inspect.isfunction(member):
            assert (inspect.getdoc(member) or "").strip(), f"{name}.{attr}"


def test_errors_are_wxqr_errors():
    assert issubclass(wxqr.login.LoginExpired, wxqr.WxqrError)
    assert issubclass(wxqr.login.LoginStoreError, wxqr.WxqrError)
    assert wxqr.login.LoginExpired("consumed").status == "consumed"


def test_the_stores_satisfy_the_protocol():
    for store in (wxqr.login.MemoryLoginStore, wxqr.login.RedisLoginStore):
        for method in ("create", "get", "mark_scanned", "consume", "wait"):
            theirs = inspect.signature(getattr(store, method))
            ours = inspect.signature(getattr(wxqr.login.LoginStore, method))
            assert list(theirs.parameters) == list(ours.parameters), (store, method)


def test_importing_login_does_not_need_redis():
    code = "import sys, wxqr.login; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
