"""Endpoint groups, one module per WeChat API family; reached as properties of the client."""

from __future__ import annotations

from .links import Links
from .openapi import OpenApi
from .qrcode import QrCode
from .qrcode_jump import QrCodeJump
from .shorten import Shorten
from .wxacode import WxaCode

__all__ = ["Links", "OpenApi", "QrCode", "QrCodeJump", "Shorten", "WxaCode"]
