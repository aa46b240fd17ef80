"""wxqr: an asyncio-native SDK for the WeChat QR-code APIs.

Everything public is importable from here (plus ``wxqr.caches``, ``wxqr.errors`` and
``wxqr.sandbox``); modules with a leading underscore are private.
"""

from __future__ import annotations

from ._client import Client
from ._decoder import ImageKind, image_kind
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
    SystemBusyError,
    TicketNotFoundError,
    TokenCacheError,
    TransportError,
    ValidationError,
    WxqrError,
)
from .models import (
    CloudBase,
    EnvVersion,
    QrJumpFile,
    QrJumpRule,
    QrJumpRules,
    QrTicket,
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
    "CachedToken",
    "Client",
    "CloudBase",
    "CredentialError",
    "EnvVersion",
    "HTTPStatusError",
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
    "ResponseDecodeError",
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
