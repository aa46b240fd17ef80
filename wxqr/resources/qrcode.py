"""Official Account parametric QR codes: ``cgi-bin/qrcode/create`` and ``showqrcode``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from .. import _validate as v
from .._converter import structure
from .._decoder import Image
from .._transport import Endpoint
from ..errors import ValidationError
from ..models import QrTicket
from ._base import Resource

__all__ = ["QrCode"]

CREATE: Final = Endpoint("cgi-bin/qrcode/create")
SHOW: Final = Endpoint(
    "cgi-bin/showqrcode", method="GET", expect="image", host="mp", needs_token=False
)

_ACTIONS: Final = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")


class QrCode(Resource):
    """Parametric QR codes of an Official Account (``client.qrcode``).

    Scanning one pushes a ``subscribe``/``SCAN`` event with the scene to your server.
    Docs: https://developers.weixin.qq.com/doc/service/api/qrcode/qrcodes/api_createqrcode.html
    """

    __slots__ = ()

    async def create_temporary(
        self,
        *,
        expire_seconds: int,
        scene_id: int | None = None,
        scene_str: str | None = None,
        timeout: float | None = None,
    ) -> QrTicket:
        """Create a temporary code (``QR_SCENE`` / ``QR_STR_SCENE``).

        Args:
            expire_seconds: lifetime, 1..2592000 (30 days). Required: WeChat silently
                defaults to 60 s when it is omitted.
            scene_id: a non-zero 32-bit integer; or
            scene_str: 1..64 characters (exactly one of the two).
            timeout: per-call timeout in seconds.

        Returns:
            The ticket, the QR content ``url`` and ``expire_seconds``.

        Raises:
            ValidationError: an argument is out of range (before any request).
            APIError: WeChat refused (see ``wxqr.errors``).
        """
        v.exactly_one_scene(scene_id, scene_str)
        v.expire_seconds(expire_seconds)
        if scene_id is not None:
            scene: dict[str, Any] = {"scene_id": v.temporary_scene_id(scene_id)}
            action = "QR_SCENE"
        else:
            scene = {"scene_str": v.scene_str(scene_str)}
            action = "QR_STR_SCENE"
        payload = {
            "expire_seconds": expire_seconds,
            "action_name": action,
            "action_info": {"scene": scene},
        }
        data = await self._transport.call(CREATE, json=payload, timeout=timeout)
        # Not a shared helper coroutine: with thousands of calls gathered, each pending call
        # would hold one more frame (~400 B).
        return structure(data, QrTicket, endpoint=CREATE.path)

    async def create_permanent(
        self,
        *,
        scene_id: int | None = None,
        scene_str: str | None = None,
        timeout: float | None = None,
    ) -> QrTicket:
        """Create a permanent code (``QR_LIMIT_SCENE`` / ``QR_LIMIT_STR_SCENE``).

        An account may hold at most 100,000 permanent codes (then errcode 45029).

        Args:
            scene_id: 1..100000; or
            scene_str: 1..64 characters (exactly one of the two).
            timeout: per-call timeout in seconds.

        Raises:
            ValidationError: an argument is out of range.
            QuotaExceededError: the 100,000 permanent codes are used up (45029).
        """
        v.exactly_one_scene(scene_id, scene_str)
        if scene_id is not None:
            scene: dict[str, Any] = {"scene_id": v.permanent_scene_id(scene_id)}
            action = "QR_LIMIT_SCENE"
        else:
            scene = {"scene_str": v.scene_str(scene_str)}
            action = "QR_LIMIT_STR_SCENE"
        payload = {"action_name": action, "action_info": {"scene": scene}}
        data = await self._transport.call(CREATE, json=payload, timeout=timeout)
        return structure(data, QrTicket, endpoint=CREATE.path)

    async def create(self, payload: Mapping[str, Any], *, timeout: float | None = None) -> QrTicket:
        """Create a code from a raw ``qrcode/create`` body, validated like the typed methods.

        Args:
            payload: ``{"action_name": ..., "action_info": {"scene": {...}},
                "expire_seconds": ...}`` exactly as WeChat documents it.

        Raises:
            ValidationError: unknown action_name, wrong scene for the action, out-of-range
                values, unknown keys, or a temporary code without ``expire_seconds``.
        """
        if not isinstance(payload, Mapping):
            raise ValidationError("payload", "must be a mapping (the qrcode/create JSON body)")
        unknown = set(payload) - {"action_name", "action_info", "expire_seconds"}
        if unknown:
            raise ValidationError("payload", f"unknown keys {sorted(unknown)}")
        action = v.one_of("action_name", payload.get("action_name"), _ACTIONS)
        info = payload.get("action_info")
        scene = info.get("scene") if isinstance(info, Mapping) else None
        if not isinstance(scene, Mapping) or len(scene) != 1:
            raise ValidationError(
                "action_info",
                "must be {'scene': {'scene_id': int}} or {'scene': {'scene_str': str}}",
            )
        permanent = action.startswith("QR_LIMIT")
        if action.endswith("STR_SCENE"):
            if "scene_str" not in scene:
                raise ValidationError("action_info.scene", f"{action} needs scene_str")
            v.scene_str(scene["scene_str"])
        else:
            if "scene_id" not in scene:
                raise ValidationError("action_info.scene", f"{action} needs scene_id")
            (v.permanent_scene_id if permanent else v.temporary_scene_id)(scene["scene_id"])
        if permanent:
            if "expire_seconds" in payload:
                raise ValidationError("expire_seconds", f"not allowed for permanent {action}")
        else:
            if "expire_seconds" not in payload:
                raise ValidationError(
                    "expire_seconds",
                    "required for temporary codes (1..2592000); WeChat would default to 60 s",
                )
            v.expire_seconds(payload["expire_seconds"])
        body = {"action_name": action, "action_info": {"scene": dict(scene)}}
        if not permanent:
            body["expire_seconds"] = payload["expire_seconds"]
        data = await self._transport.call(CREATE, json=body, timeout=timeout)
        return structure(data, QrTicket, endpoint=CREATE.path)

    async def show(self, ticket: QrTicket | str, *, timeout: float | None = None) -> Image:
        """Download the QR image of a ticket (``GET mp.weixin.qq.com/cgi-bin/showqrcode``).

        No access token is needed. The image is returned only if the body really is one, as a
        :class:`wxqr.Image` (``bytes`` with ``kind`` and ``content_type``).

        Raises:
            TicketNotFoundError: the ticket is unknown or expired (HTTP 404).
            ResponseDecodeError: the answer was not a complete image.
        """
        value = _ticket(ticket)
        return await self._transport.call(  # type: ignore[no-any-return]
            SHOW, params={"ticket": value}, timeout=timeout
        )

    def show_url(self, ticket: QrTicket | str) -> str:
        """The showqrcode URL of a ticket, URL-encoded (tickets contain ``+``, ``/``, ``=``)."""
        return f"{self._transport.url(SHOW)}?ticket={quote(_ticket(ticket), safe='')}"


def _ticket(ticket: QrTicket | str) -> str:
    value = ticket.ticket if isinstance(ticket, QrTicket) else ticket
    return v.text("ticket", value, max_len=1024)
