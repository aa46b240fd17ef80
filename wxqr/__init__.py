"""wxqr: an asyncio-native SDK for the WeChat QR-code APIs.

Everything public is importable from here (plus ``wxqr.caches``, ``wxqr.errors``,
``wxqr.events`` — receiving scan pushes —, ``wxqr.login`` — scan to log in — and
``wxqr.sandbox``); modules with a leading underscore are private.
"""

from __future__ import annotations

from ._client import Client
from ._decoder import Image, ImageKind, image_kind
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
    CloudBase,
    EnvVersion,
    QrJumpFile,
    QrJumpRule,
    QrJumpRules,
    QrTicket,
    RateWindow,
    RidInfo,
    Scheme,
    SchemeInfo,
    ShortenData,
    UrlLink,
    UrlLinkInfo,
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
    "CloudBase",
    "CredentialError",
    "EnvVersion",
    "HTTPStatusError",
    "Image",
    "ImageKind",
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
    "Scheme",
    "SchemeInfo",
    "ShortenData",
    "SystemBusyError",
    "TicketNotFoundError",
    "TokenCache",
    "TokenCacheError",
    "TokenProvider",
    "TransportError",
    "UrlLink",
    "UrlLinkInfo",
    "ValidationError",
    "WxqrError",
    "__version__",
    "image_kind",
]
