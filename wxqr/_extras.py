"""Optional dependencies (extras): import one, or say in one line which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``extra``.

    Args:
        module: the module to import, e.g. ``"segno"``.
        extra: the wxqr extra that installs it, e.g. ``"sandbox"``.
        purpose: what needs it, e.g. ``"the sandbox draws images with segno"``.

    Raises:
        MissingExtraError: (a ``ModuleNotFoundError``) ``module`` cannot be imported, with the
            one-line message ``"<purpose>, which is not installed: pip install 'wxqr[extra]'"``.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name != module and not module.startswith(exc.name + "."):
            raise  # a bug inside an installed module, not a missing extra
        message = f"{purpose}, which is not installed: pip install 'wxqr[{extra}]'"
        raise MissingExtraError(message, name=module) from None
