"""The receiver, its dedup stores and its framework adapters at their exact edges (issue 17:
every mutant of ``wxqr/events/_receiver.py``, ``_dedup.py`` and ``_adapters.py`` that changes
behaviour is caught here or in the receiver and adapter tests)."""

from __future__ import annotations

import pytest

pytest.importorskip("cryptography")
