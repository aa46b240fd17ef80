"""Fault injection: make chosen endpoints misbehave the ways real WeChat (and networks) do.

::

    state.faults.add("wxa/getwxacodeunlimit", "errcode", errcode=45011, times=2)
    state.faults.add("cgi-bin/qrcode/create", "http_status", status=503, probability=0.3)
    state.faults.add("*", "latency", seconds=0.2)              # every endpoint, once
    state.faults.add("cgi-bin/wxopen/*", "drop", times=1, processed=True)

A fault fires ``times`` times (default once), or — with ``probability`` — on each matching
request with that probability (for ever, or at most ``times`` times when both are given). The
draws come from a generator seeded by ``SandboxState(seed=...)``, so runs are reproducible.
``endpoint`` is an ``fnmatch`` pattern over paths without the leading slash
(``"cgi-bin/showqrcode"``, ``"wxa/*"``, ``"*"``).

Kinds (:class:`FaultKind`):

* ``errcode`` — HTTP 200 JSON ``{"errcode": N, "errmsg": "<catalogue text> rid: ..."}``.
* ``http_status`` — that HTTP status (default 502) with a small HTML body.
* ``latency`` — the answer is delayed by ``seconds`` of real time (``anyio.sleep``); it combines
  with one other fault on the same request.
* ``drop`` — the connection is closed without any answer. Served by :func:`served` /
  ``wxqr sandbox`` the socket really is aborted; in-process (``httpx.ASGITransport``) the app
  raises :class:`httpx.RemoteProtocolError`, which is what httpx raises for a real drop.
* ``html`` — HTTP 200 ``text/html`` page (a captive portal or a WeChat error page).
* ``truncated_image`` — the real answer with only the first half of its body.
* ``lying_content_type`` — the real answer mislabelled: JSON is sent as ``image/jpeg``, an image
  as ``text/plain``. With ``errcode=N`` it answers that error JSON labelled ``image/jpeg``.

``processed=True`` (for ``errcode``, ``http_status``, ``html`` and ``drop``) lets the request
take effect first — a ticket is created, a publish consumes quota — and only then replaces the
answer: what a client sees when WeChat did the work but the answer was lost.
"""

from __future__ import annotations

import enum
import fnmatch
import random
import threading
from collections.abc import Iterator
from typing import Any

import attrs

__all__ = ["Fault", "FaultKind", "FaultPlan", "parse_fault_spec"]


class FaultKind(str, enum.Enum):
    """The ways an answer can be broken; see the module docstring."""

    ERRCODE = "errcode"
    HTTP_STATUS = "http_status"
    LATENCY = "latency"
    DROP = "drop"
    HTML = "html"
    TRUNCATED_IMAGE = "truncated_image"
    LYING_CONTENT_TYPE = "lying_content_type"


#: Kinds that replace the whole answer (as opposed to delaying or altering the real one).
REPLACING_KINDS = frozenset(
    {FaultKind.ERRCODE, FaultKind.HTTP_STATUS, FaultKind.DROP, FaultKind.HTML}
)


@attrs.define(eq=False)
class Fault:
    """One injected fault. Build it with :meth:`FaultPlan.add`.

    Attributes:
        endpoint: ``fnmatch`` pattern over endpoint paths (``"wxa/getwxacode"``, ``"*"``).
        kind: the :class:`FaultKind`.
        times: how many more times it may fire (``None``: unlimited).
        probability: chance of firing on each matching request.
        errcode: the errcode for ``errcode`` (and optionally ``lying_content_type``) faults.
        errmsg: overrides the catalogue errmsg.
        status: HTTP status for ``http_status``.
        seconds: delay for ``latency``.
        processed: let the request take effect before replacing the answer.
        fired: how many times it has fired.
    """

    endpoint: str
    kind: FaultKind
    times: int | None = 1
    probability: float = 1.0
    errcode: int | None = None
    errmsg: str | None = None
    status: int = 502
    seconds: float = 0.0
    processed: bool = False
    fired: int = 0

    def matches(self, endpoint: str) -> bool:
        """Whether this fault applies to ``endpoint`` and may still fire."""
        return (self.times is None or self.times > 0) and fnmatch.fnmatchcase(
            endpoint, self.endpoint
        )


class FaultPlan:
    """The faults configured on a :class:`~wxqr.sandbox.SandboxState` (``state.faults``)."""

    def __init__(self, rng: random.Random, lock: threading.RLock) -> None:
        self._rng = rng
        self._lock = lock
        self._faults: list[Fault] = []

    def add(
        self,
        endpoint: str,
        kind: FaultKind | str,
        *,
        times: int | None = None,
        probability: float | None = None,
        errcode: int | None = None,
        errmsg: str | None = None,
        status: int = 502,
        seconds: float = 0.0,
        processed: bool = False,
    ) -> Fault:
        """Inject a fault into requests to ``endpoint``.

        Args:
            endpoint: endpoint path without the leading slash, or an ``fnmatch`` pattern.
            kind: a :class:`FaultKind` or its value (``"errcode"``, ``"drop"``, ...).
            times: fire at most this many times. Default: once, or unlimited when a
                ``probability`` is given.
            probability: fire on each matching request with this probability (0 < p <= 1).
            errcode: required for ``errcode`` faults; the errmsg comes from the catalogue.
            errmsg: replaces the catalogue's errmsg text.
            status: the HTTP status of ``http_status`` faults (default 502).
            seconds: the delay of ``latency`` faults.
            processed: run the real request first, then replace its answer.

        Returns:
            the :class:`Fault`, whose ``fired`` counter tests can assert on.

        Raises:
            ValueError: inconsistent arguments.
        """
        kind = FaultKind(kind)
        if kind is FaultKind.ERRCODE and errcode is None:
            raise ValueError("an errcode fault needs errcode=...")
        if kind is FaultKind.LATENCY and seconds <= 0:
            raise ValueError("a latency fault needs seconds > 0")
        if probability is not None and not 0.0 < probability <= 1.0:
            raise ValueError("probability must be in (0, 1]")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        if times is None and probability is None:
            times = 1
        fault = Fault(
            endpoint=endpoint.strip("/"),
            kind=kind,
            times=times,
            probability=1.0 if probability is None else probability,
            errcode=errcode,
            errmsg=errmsg,
            status=status,
            seconds=seconds,
            processed=processed,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_spec(self, spec: str) -> Fault:
        """Add a fault from its CLI spelling; see :func:`parse_fault_spec`."""
        endpoint, kind, options = parse_fault_spec(spec)
        return self.add(endpoint, kind, **options)

    def remove(self, fault: Fault) -> None:
        """Remove one fault."""
        with self._lock:
            self._faults.remove(fault)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def __iter__(self) -> Iterator[Fault]:
        return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)

    def draw(self, endpoint: str) -> tuple[float, Fault | None]:
        """Decide the faults of one request to ``endpoint``.

        Returns:
            ``(delay_seconds, fault)``: the total latency to add, and the one non-latency
            fault that fired (the first in insertion order), if any. Fired faults are consumed.
        """
        delay = 0.0
        chosen: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(endpoint):
                    continue
                if fault.kind is not FaultKind.LATENCY and chosen is not None:
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.times is not None:
                    fault.times -= 1
                if fault.kind is FaultKind.LATENCY:
                    delay += fault.seconds
                else:
                    chosen = fault
        return delay, chosen


def parse_fault_spec(spec: str) -> tuple[str, FaultKind, dict[str, Any]]:
    """Parse the CLI spelling ``ENDPOINT:KIND[:ARG][@TIMES|%PROB]``.

    ``ARG`` is the errcode (``errcode``, optional for ``lying_content_type``), the HTTP status
    (``http_status``) or the seconds (``latency``). ``@3`` fires three times, ``%0.25`` fires
    with probability 0.25 on every request; neither means once. A trailing ``!`` on the kind
    (``drop!``) sets ``processed``.

    Examples: ``wxa/getwxacodeunlimit:errcode:45011@3``, ``cgi-bin/token:drop``,
    ``*:latency:0.5%0.1``, ``cgi-bin/qrcode/create:http_status:503``.

    Raises:
        ValueError: the spec is malformed.
    """
    options: dict[str, Any] = {}
    body = spec
    if "@" in body:
        body, _, count = body.rpartition("@")
        options["times"] = int(count)
    elif "%" in body:
        body, _, prob = body.rpartition("%")
        options["probability"] = float(prob)
    parts = body.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"fault spec {spec!r} is not ENDPOINT:KIND[:ARG][@TIMES|%PROB]")
    endpoint, kind_text = parts[0], parts[1]
    if kind_text.endswith("!"):
        kind_text = kind_text[:-1]
        options["processed"] = True
    try:
        kind = FaultKind(kind_text)
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault kind {kind_text!r} (one of: {kinds})") from None
    if len(parts) == 3:
        arg = parts[2]
        if kind in (FaultKind.ERRCODE, FaultKind.LYING_CONTENT_TYPE):
            options["errcode"] = int(arg)
        elif kind is FaultKind.HTTP_STATUS:
            options["status"] = int(arg)
        elif kind is FaultKind.LATENCY:
            options["seconds"] = float(arg)
        else:
            raise ValueError(f"fault kind {kind.value!r} takes no argument")
    return endpoint, kind, options
