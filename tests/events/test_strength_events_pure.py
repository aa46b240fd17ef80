"""Signature, crypto, parsing and refusal errors at their exact edges (issue 17: every mutant of
``wxqr/events/_signature.py``, ``_crypto.py``, ``_parse.py`` and ``_errors.py`` that changes
behaviour is caught here or in ``test_events_pure.py``)."""

from __future__ import annotations

import pytest

pytest.importorskip("cryptography")
