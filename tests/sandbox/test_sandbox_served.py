"""The sandbox on a real loopback socket: served(), the drop fault, and the CLI."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from sandbox_helpers import decode_qr

from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, build_parser, served
from wxqr.sandbox._serve import state_from_args

CREDS = {"grant_type": "client_credential", "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET}


def test_served_answers_over_a_real_socket_and_drop_really_drops():
    state = SandboxState(seed=1)
    with served(state) as base_url, httpx.Client(base_url=base_url) as http:
        assert base_url.startswith("http://127.0.0.1:")
        token = http.post("/cgi-bin/stable_token", json=CREDS).json()["access_token"]
        body = {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 3}}}
        ticket = http.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=body)
        image = http.get("/cgi-bin/showqrcode", params={"ticket": ticket.json()["ticket"]})
        assert decode_qr(image.content) == ticket.json()["url"]
        assert state.requests[-1].client == "127.0.0.1"

        state.faults.add("cgi-bin/shorten/gen", "drop", times=2)
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):
                http.post(
                    "/cgi-bin/shorten/gen", params={"access_token": token}, json={"long_data": "d"}
                )
        ok = http.post(
            "/cgi-bin/shorten/gen", params={"access_token": token}, json={"long_data": "d"}
        )
        assert ok.json()["errcode"] == 0
        assert state.calls["cgi-bin/shorten/gen"] == 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(base_url + "/cgi-bin/token", timeout=2)


def test_cli_arguments_build_the_described_state():
    args = build_parser().parse_args(
        [
            "--appid", "wxcli", "--secret", "s", "--seed", "5", "--personal", "--unreleased",
            "--ip-whitelist", "10.0.0.1", "10.0.0.2", "--frozen-secret",
            "--fault", "wxa/getwxacode:errcode:-1@2", "--fault", "*:latency:0.1%0.5",
        ]
    )  # fmt: skip
    state = state_from_args(args)
    account = state.account("wxcli")
    assert (account.secret, account.personal, account.released) == ("s", True, False)
    assert account.ip_whitelist == ["10.0.0.1", "10.0.0.2"]
    assert account.secret_frozen
    assert state.seed == 5
    assert list(state.accounts) == ["wxcli"]
    assert [(f.endpoint, f.kind.value, f.times) for f in state.faults] == [
        ("wxa/getwxacode", "errcode", 2),
        ("*", "latency", None),
    ]


def test_python_m_wxqr_sandbox_serves_until_terminated():
    process = subprocess.Popen(
        [sys.executable, "-m", "wxqr.sandbox", "--port", "0", "--appid", "wxcli", "--secret", "s",
         "--fault", "cgi-bin/token:errcode:-1@1", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        assert line.startswith("wxqr sandbox listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1].strip()
        params = {"grant_type": "client_credential", "appid": "wxcli", "secret": "s"}
        for _ in range(100):
            try:
                first = httpx.get(base_url + "/cgi-bin/token", params=params)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert first.json()["errcode"] == -1
        assert httpx.get(base_url + "/cgi-bin/token", params=params).json()["expires_in"] == 7200
    finally:
        process.terminate()
        assert process.wait(timeout=10) in (0, -15)
