"""Helpers shared by the sandbox tests (imported as a plain module: tests/ has no packages)."""

from __future__ import annotations

import io
import re

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
RID = re.compile(r" rid: ([0-9a-f]{8})-[0-9a-f]{8}-[0-9a-f]{8}$")


def decode_qr(png: bytes) -> str:
    """Decode the single QR code in an image with a real decoder (zxing-cpp)."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGBA")
    flat = Image.new("RGBA", image.size, (255, 255, 255, 255))
    flat.alpha_composite(image)
    results = zxingcpp.read_barcodes(flat.convert("L"))
    assert len(results) == 1, results
    return str(results[0].text)


def errcode_of(response) -> int:
    """The errcode of a WeChat JSON error answer (asserting the envelope's shape)."""
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; encoding=utf-8"
    body = response.json()
    assert RID.search(body["errmsg"]), body
    return int(body["errcode"])
