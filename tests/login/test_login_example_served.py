"""examples/scan_login across processes and in a real browser.

One cluster per module: a real ``redis-server``, the sandbox served by uvicorn on a loopback
socket, and the example app as **two uvicorn processes** ("workers" A and B) sharing that Redis.
The sandbox pushes scans to one worker while the page waits on the other; every answer names
its process in ``X-Worker-Pid``, and each worker's log says what it handled.

The browser test drives Debian's ``chromium`` through Playwright (no downloaded browser). If
Playwright or Chromium is missing, or Chromium cannot start here, it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest
from login_helpers import ticket_in
from redisserver import free_port

from wxqr.sandbox import SandboxState, served

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
PUSH_TOKEN = "servedT0ken"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@attrs.define
class Worker:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    pid: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@attrs.define
class Cluster:
    state: SandboxState
    sandbox_url: str
    a: Worker
    b: Worker

    def push_to(self, worker: Worker) -> None:
        """Point the account's server URL at ``worker``."""
        self.state.configure_push(worker.url + "/wechat", token=PUSH_TOKEN)

    def scan(self, ticket: str, openid: str) -> dict:
        """A user scans: the test presses the served sandbox's "scan" control."""
        answer = httpx.post(
            self.sandbox_url + "/sandbox/scan",
            json={"ticket": ticket, "openid": openid},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


def _start_worker(env: dict[str, str], logdir: Path, name: str) -> Worker:
    port = free_port()
    log_path = logdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "examples.scan_login.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "info",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Worker(f"http://127.0.0.1:{port}", process, log_path)


def _await_ready(worker: Worker, deadline: float) -> None:
    while True:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited ({worker.process.returncode}):\n{worker.log()}")
        try:
            answer = httpx.get(worker.url + "/me", timeout=1)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{worker.log()}") from None
            time.sleep(0.1)
            continue
        worker.pid = int(answer.headers["x-worker-pid"])
        assert worker.pid == worker.process.pid
        return


@pytest.fixture(scope="module")
def cluster(redis_server) -> Iterator[Cluster]:
    pytest.importorskip("fastapi")
    state = SandboxState(seed=5)
    logdir = Path(tempfile.mkdtemp(prefix="wxqr-login-"))
    workers: list[Worker] = []
    with served(state) as sandbox_url:
        env = {
            **os.environ,
            "WXQR_API_BASE_URL": sandbox_url,
            "WXQR_PUSH_TOKEN": PUSH_TOKEN,
            "WXQR_REDIS_URL": redis_server.url,
            "WXQR_SITE": "cluster.example",
            "SESSION_SECRET": "one-secret-for-every-worker-0123456789",
            "PYTHONUNBUFFERED": "1",
        }
        try:
            workers = [_start_worker(env, logdir, name) for name in ("a", "b")]
            deadline = time.monotonic() + 60
            for worker in workers:
                _await_ready(worker, deadline)
            yield Cluster(state, sandbox_url, *workers)
        finally:
            for worker in workers:
                worker.stop()
            shutil.rmtree(logdir, ignore_errors=True)


def _ticket_of(page: str) -> str:
    return ticket_in(page)[1]


def _wait_in_background(worker: Worker, cookies: httpx.Cookies) -> tuple[threading.Thread, list]:
    answers: list[httpx.Response] = []

    def run() -> None:
        answers.append(httpx.post(worker.url + "/login/wait", cookies=cookies, timeout=40))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, answers


@pytest.mark.parametrize(("start", "wait", "push"), [("a", "a", "b"), ("a", "b", "a")])
def test_the_wait_and_the_push_land_on_different_workers(cluster, start, wait, push):
    workers = {"a": cluster.a, "b": cluster.b}
    assert cluster.a.pid != cluster.b.pid
    cluster.push_to(workers[push])
    openid = f"oCLUSTER-{start}{wait}{push}"

    page = httpx.get(workers[start].url + "/")
    assert page.status_code == 200
    assert int(page.headers["x-worker-pid"]) == workers[start].pid
    ticket = _ticket_of(page.text)

    thread, answers = _wait_in_background(workers[wait], page.cookies)
    time.sleep(0.5)  # the long poll is waiting on its worker now
    assert answers == []
    scanned = time.monotonic()
    pushed = cluster.scan(ticket, openid)
    assert pushed["pushed"] is True
    assert pushed["delivered"] is True
    assert [d["status"] for d in pushed["deliveries"]] == [200]
    thread.join(30)
    latency = time.monotonic() - scanned

    (answer,) = answers
    assert answer.json() == {"status": "ok", "openid": openid}
    assert int(answer.headers["x-worker-pid"]) == workers[wait].pid
    assert workers[wait].pid != workers[push].pid
    assert latency < 10, latency  # woken by the push through Redis, not by the 20 s poll
    # Each worker's log says what it handled.
    assert f"pid {workers[push].pid}: scan by {openid}: accepted" in workers[push].log()
    assert f"pid {workers[wait].pid}: {openid} logged in" in workers[wait].log()
    assert f"scan by {openid}" not in workers[wait].log()
    # The session cookie works on every worker (one shared secret).
    for worker in workers.values():
        me = httpx.get(worker.url + "/me", cookies=answer.cookies)
        assert me.json() == {"openid": openid}


def _launch_chromium(playwright):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium; .ci/run does it)")
    try:
        return playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
        )
    except Exception as exc:  # Playwright's Error: the browser could not start here
        pytest.skip(f"chromium could not start: {str(exc).splitlines()[0]}")


def test_a_real_browser_logs_in_by_scanning(cluster):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (it is in the dev extra)"
    )
    cluster.push_to(cluster.b)  # the page is served (and waits) on A
    with sync_api.sync_playwright() as playwright:
        browser = _launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(cluster.a.url + "/")
            assert page.title() == "Log in with WeChat - cluster.example"
            # The QR image really loaded (from the served sandbox's showqrcode).
            page.wait_for_function(
                "() => { const img = document.getElementById('qr');"
                " return img.complete && img.naturalWidth > 0; }"
            )
            assert page.eval_on_selector("#qr", "img => img.naturalWidth") >= 200
            src = page.get_attribute("#qr", "src")
            assert src.startswith(cluster.sandbox_url + "/cgi-bin/showqrcode?ticket=")
            from urllib.parse import parse_qs, urlsplit

            (ticket,) = parse_qs(urlsplit(src).query)["ticket"]
            assert page.inner_text("#status") == "Scan the code with WeChat to log in."

            pushed = cluster.scan(ticket, "oCHROMIUM")
            assert pushed["delivered"] is True

            page.wait_for_function(
                "() => document.getElementById('status').textContent.startsWith('logged in')"
            )
            assert page.inner_text("#status") == "logged in as oCHROMIUM"
            assert page.is_hidden("#qr")
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["session"]["httpOnly"] is True
            me = page.context.request.get(cluster.a.url + "/me")
            assert me.json() == {"openid": "oCHROMIUM"}
            assert "scan by oCHROMIUM: accepted" in cluster.b.log()
        finally:
            browser.close()
