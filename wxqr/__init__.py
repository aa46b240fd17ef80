"""wxqr: an asyncio-native SDK for the WeChat QR-code APIs.

Everything public is importable from here (plus ``wxqr.caches``, ``wxqr.errors`` and
``wxqr.sandbox``); modules with a leading underscore are private.
"""

from __future__ import annotations

from ._client import Client
from ._decoder import image_kind
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
from .models import QrJumpFile, QrJumpRule, QrJumpRules, QrTicket, ShortenData

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "APIError",
    "AccessTokenError",
    "AdminConfirmationError",
    "CachedToken",
    "Client",
    "CredentialError",
    "HTTPStatusError",
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
    "ResponseTooLargeError",
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
