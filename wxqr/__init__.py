"""wxqr: an asyncio-native SDK for the WeChat QR-code APIs.

Everything public is importable from here (plus ``wxqr.caches``, ``wxqr.errors``,
``wxqr.events`` — receiving scan pushes —, ``wxqr.login`` — scan to log in — and
``wxqr.sandbox``); modules with a leading underscore are private.
"""

from __future__ import annotations

from ._client import Client
from ._decoder import Image, image_kind
from ._ratelimit import DEFAULT_RATE_LIMITS, MemoryRateLimiter, RateLimit, RateLimiter
from ._tokens import TokenProvider
from .caches import CachedToken, MemoryTokenCache, TokenCache
from .errors import (
    AccessTokenError,
    AdminConfirmationError,
    APIError,
    CredentialError,
    HTTPStatusError,
    InvalidRequestError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    SystemBusyError,
    TicketNotFoundError,
    TokenCacheError,
    TransportError,
    ValidationError,
    WxqrError,
)
from .models import (
    ApiQuota,
    CallbackCheck,
    CallbackDns,
    CallbackPing,
    QrJumpFile,
    QrJumpRule,
    QrJumpRules,
    QrTicket,
    RateWindow,
    RidInfo,
    ShortenData,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "APIError",
    "AccessTokenError",
    "AdminConfirmationError",
    "ApiQuota",
    "CachedToken",
    "CallbackCheck",
    "CallbackDns",
    "CallbackPing",
    "Client",
    "CredentialError",
    "HTTPStatusError",
    "Image",
    "InvalidRequestError",
    "MemoryRateLimiter",
    "MemoryTokenCache",
    "PermissionDeniedError",
    "QrJumpFile",
    "QrJumpRule",
    "QrJumpRules",
    "QrTicket",
    "QuotaExceededError",
    "RateLimit",
    "RateLimitError",
    "RateLimiter",
    "RateWindow",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RidInfo",
    "ShortenData",
    "SystemBusyError",
    "TicketNotFoundError",
    "TokenCache",
    "TokenCacheError",
    "TokenProvider",
    "TransportError",
    "ValidationError",
    "WxqrError",
    "__version__",
    "image_kind",
]
