"""Mini Program codes: ``createwxaqrcode`` (C), ``getwxacode`` (A), ``getwxacodeunlimit`` (B).

Images come back as :class:`wxqr.Image` (``bytes`` with ``.kind``, ``.content_type`` and, for A
and C, ``.num_used`` from WeChat's ``Num-Used`` header; WeChat labels PNG and JPEG alike
``image/jpeg``). Errors come back as HTTP 200 JSON and raise.
"""

from __future__ import annotations

from typing import Any, Final

from .. import _validate as v
from .._decoder import Image
from .._transport import Endpoint
from ..errors import ValidationError
from ..models import EnvVersion
from ._base import Resource

__all__ = ["WxaCode"]

CREATE_QRCODE: Final = Endpoint("cgi-bin/wxaapp/createwxaqrcode", expect="image")
GET: Final = Endpoint("wxa/getwxacode", expect="image")
GET_UNLIMITED: Final = Endpoint(
    "wxa/getwxacodeunlimit", expect="image", rate_bucket="getwxacodeunlimit"
)


def _style(
    body: dict[str, Any],
    width: int,
    auto_color: bool,
    line_color: tuple[int, int, int] | dict[str, int] | None,
    is_hyaline: bool,
    env_version: EnvVersion,
) -> dict[str, Any]:
    body["width"] = v.width(width)
    body["auto_color"] = v.boolean("auto_color", auto_color)
    if line_color is not None:
        if auto_color:
            raise ValidationError("line_color", "only used when auto_color is False")
        body["line_color"] = v.line_color(line_color)
    body["is_hyaline"] = v.boolean("is_hyaline", is_hyaline)
    body["env_version"] = v.env_version(env_version)
    return body


class WxaCode(Resource):
    """Mini Program codes (``client.wxacode``); call with the Mini Program's client.

    Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/qr-code/api_getqrcode
    """

    __slots__ = ()

    async def create_qrcode(
        self, *, path: str, width: int = 430, timeout: float | None = None
    ) -> Image:
        """A square Mini Program QR code (``createQRCode``, interface C).

        Shares a lifetime cap of 100,000 codes with :meth:`get` (then 45029); the returned
        image's ``num_used`` tells how many are spent. Works only for a released Mini Program.

        Args:
            path: page with optional query, 1..128 bytes, e.g. ``"pages/index/index?x=1"``.
            width: 280..1280 px.
        """
        v.text("path", path, max_len=v.C_PATH_MAX_BYTES, unit="bytes")
        v.no_scancode_time("path", path)
        body = {"path": path, "width": v.width(width)}
        return await self._transport.call(  # type: ignore[no-any-return]
            CREATE_QRCODE, json=body, timeout=timeout
        )

    async def get(
        self,
        *,
        path: str,
        width: int = 430,
        auto_color: bool = False,
        line_color: tuple[int, int, int] | dict[str, int] | None = None,
        is_hyaline: bool = False,
        env_version: EnvVersion = "release",
        timeout: float | None = None,
    ) -> Image:
        """A Mini Program code for a page with query (``getQRCode``, interface A).

        Shares a lifetime cap of 100,000 codes with :meth:`create_qrcode` (then 45029); the
        returned image's ``num_used`` (WeChat's ``Num-Used`` header) tells how many are spent.

        Args:
            path: page with optional query, 1..1024 characters.
            width: 280..1280 px.
            auto_color: derive the line colour from the image.
            line_color: ``(r, g, b)``, each 0..255 (only with ``auto_color=False``).
            is_hyaline: transparent background (PNG).
            env_version: ``"release"``, ``"trial"`` or ``"develop"``.
        """
        v.text("path", path, max_len=v.A_PATH_MAX_CHARS)
        v.no_scancode_time("path", path)
        body = _style({"path": path}, width, auto_color, line_color, is_hyaline, env_version)
        return await self._transport.call(GET, json=body, timeout=timeout)  # type: ignore[no-any-return]

    async def get_unlimited(
        self,
        *,
        scene: str,
        page: str | None = None,
        check_path: bool = True,
        env_version: EnvVersion = "release",
        width: int = 430,
        auto_color: bool = False,
        line_color: tuple[int, int, int] | dict[str, int] | None = None,
        is_hyaline: bool = False,
        timeout: float | None = None,
    ) -> Image:
        """A Mini Program code with a scene, in unlimited numbers (``getUnlimitedQRCode``, B).

        Rate-limited by WeChat to 5,000 calls a minute per account; the client waits rather
        than exceed it (see ``rate_limits``).

        Args:
            scene: 1..32 characters from ``0-9 a-z A-Z !#$&'()*+,/:;=?@-._~``.
            page: released page without leading ``/`` or query; default the home page.
            check_path: ``False`` allows unreleased pages (for trial/develop versions).
            env_version, width, auto_color, line_color, is_hyaline: as in :meth:`get`.
        """
        body: dict[str, Any] = {"scene": v.unlimited_scene(scene)}
        if page is not None:
            v.page(page)
            body["page"] = page
        body["check_path"] = v.boolean("check_path", check_path)
        _style(body, width, auto_color, line_color, is_hyaline, env_version)
        return await self._transport.call(  # type: ignore[no-any-return]
            GET_UNLIMITED, json=body, timeout=timeout
        )
