from __future__ import annotations

from .._transport import Transport


class Resource:
    """A group of endpoints; knows endpoints and models, never HTTP details."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
