"""Real, scannable images for ``showqrcode`` and the three wxacode endpoints (via ``segno``).

A real wxacode is a circular "sun code" only WeChat can read; the sandbox stands a standard QR
code in for it, so tests can decode what was asked for with any QR decoder:

* ``showqrcode``: the ticket's ``url`` (``http://weixin.qq.com/q/...``), 430 px.
* ``getwxacode`` / ``createwxaqrcode``: the ``path`` exactly as sent (query included).
* ``getwxacodeunlimit``: ``f"{page}?scene={scene}"`` with ``page`` defaulting to the account's
  home page and ``scene`` verbatim (not URL-encoded).

Images are PNG (what WeChat sends for ``is_hyaline`` too, while labelling it ``image/jpeg``),
error correction M, dark modules in ``line_color``, light modules white or — with
``is_hyaline`` — transparent. The side is ``width`` px give or take one module's size: the scale
is ``width // modules`` and the quiet zone (at least 4 modules) absorbs the remainder.
"""

from __future__ import annotations

import io

from .._extras import require

__all__ = ["qr_png"]


def qr_png(
    content: str,
    *,
    width: int = 430,
    dark: tuple[int, int, int] = (0, 0, 0),
    transparent: bool = False,
) -> bytes:
    """Render ``content`` as a QR code PNG about ``width`` pixels wide.

    Args:
        content: the text the QR encodes.
        width: target side in pixels.
        dark: RGB colour of the dark modules.
        transparent: transparent background instead of white.

    Returns:
        the PNG bytes.
    """
    # An optional dependency (the `sandbox` extra): imported only when drawing.
    segno = require("segno", "sandbox", "the wxqr sandbox draws its images with segno")

    qr = segno.make_qr(content, error="m", boost_error=False)
    modules = qr.symbol_size(scale=1, border=0)[0]
    scale = max(1, width // (modules + 8))
    border = max(4, round((width / scale - modules) / 2))
    out = io.BytesIO()
    qr.save(
        out,
        kind="png",
        scale=scale,
        border=border,
        dark=dark,
        light=None if transparent else (255, 255, 255),
    )
    return out.getvalue()
