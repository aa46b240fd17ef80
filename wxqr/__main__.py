"""``python -m wxqr``: the ``wxqr`` command (see :mod:`wxqr.cli`)."""

from __future__ import annotations

import sys

from wxqr.cli import main

if __name__ == "__main__":
    sys.exit(main())
