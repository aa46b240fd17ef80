"""Strings that hold an AppSecret or an access token, and never show it in a ``repr``.

Tracebacks rendered with ``capture_locals=True`` (Sentry, ``traceback.TracebackException``,
pytest's ``--showlocals``) print the ``repr`` of every local of every frame on the way; so do
debuggers and ``f"{x!r}"``. Holding the secret and the tokens in this ``str`` subclass keeps
them usable everywhere a ``str`` is (JSON bodies, URLs) while their ``repr`` -- and the ``repr``
of every dict, tuple or attrs object that contains them -- is masked. (The wire's ``Target``
and ``Sealed`` do the same for the URLs and bodies built from them.)

``str(masked)`` and f-strings without ``!r`` still give the plain value: that is how it is sent.
"""

from __future__ import annotations

__all__ = ["Masked"]


class Masked(str):
    """An AppSecret or access token: a ``str`` whose ``repr`` is ``'***'`` (and its last 4)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***" + (self[-4:] if len(self) > 12 else "") + "'"
