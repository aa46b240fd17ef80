"""``python -m wxqr.sandbox``: serve the WeChat emulator (same options as ``wxqr sandbox``)."""

from __future__ import annotations

import sys

from ._serve import serve_main

if __name__ == "__main__":
    sys.exit(serve_main())
