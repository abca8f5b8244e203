"""Errors of the registry sources (gBizINFO API).

::

    HokanError
    └─ RegistryError(source)
       ├─ RegistryConfigError          no API token: never retried
       ├─ RegistryAuthError(status_code)  401/403: the token is wrong; never retried
       ├─ RegistryRateLimited(retry_after_s)  429: retry after the wait (a TransientError)
       ├─ RegistryUnavailable(status_code)    5xx, timeout, connection error: retry later (a TransientError)
       └─ RegistryRequestError(status_code)   other 4xx: final for this request

Whether to retry depends on the type only. The whole tree of hokan: ``hokan.core.errors``.
"""

from __future__ import annotations

from hokan.core.errors import HokanError, TransientError


class RegistryError(HokanError):
    """A registry source failed. source: "gbizinfo_api"."""

    def __init__(self, message: str, *, source: str = "gbizinfo_api") -> None:
        super().__init__(message)
        self.source = source


class RegistryConfigError(RegistryError):
    """The source is not configured (no token)."""


class RegistryAuthError(RegistryError):
    """The server refused the token (401/403)."""

    def __init__(self, message: str, *, status_code: int, source: str = "gbizinfo_api") -> None:
        super().__init__(message, source=source)
        self.status_code = status_code


class RegistryRateLimited(RegistryError, TransientError):
    """429: retry_after_s is the server's Retry-After in seconds, or None when not given."""

    def __init__(self, message: str, *, retry_after_s: float | None, source: str = "gbizinfo_api") -> None:
        super().__init__(message, source=source)
        self.retry_after_s = retry_after_s


class RegistryUnavailable(RegistryError, TransientError):
    """5xx, timeout or connection failure; status_code is None for the latter two."""

    def __init__(self, message: str, *, status_code: int | None = None, source: str = "gbizinfo_api") -> None:
        super().__init__(message, source=source)
        self.status_code = status_code


class RegistryRequestError(RegistryError):
    """Another 4xx (bad parameters): final, never retried."""

    def __init__(self, message: str, *, status_code: int, source: str = "gbizinfo_api") -> None:
        super().__init__(message, source=source)
        self.status_code = status_code
