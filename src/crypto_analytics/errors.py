"""The exceptions callers can act on.

Sources raise these instead of library-specific errors so the pipeline can decide per case:
retry (RateLimited), skip with a reason (SymbolUnavailable, HistoryLimitExceeded), quarantine
(BadPayload) or fail the batch visibly (SourceUnavailable).
"""

from __future__ import annotations


class CryptoAnalyticsError(Exception):
    """Base class for every error the platform raises on purpose.

    Its message is redacted when the error is created (crypto_analytics.redaction), so no
    password, key or token can reach a log line, the audit table or a user's terminal through it.
    """

    def __init__(self, *args: object) -> None:
        from crypto_analytics.redaction import redact

        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(CryptoAnalyticsError):
    """The configuration or a user argument is invalid; the message names what was wrong."""


class SourceError(CryptoAnalyticsError):
    """A data source could not deliver what was asked."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class SourceUnavailable(SourceError):
    """The source is down, unreachable or kept failing after retries."""


class Geoblocked(SourceUnavailable):
    """The source refuses this client's location (Binance answers HTTP 451 to US IPs)."""


class SourceUnreachable(SourceUnavailable):
    """The host cannot be reached at all (its name does not resolve, or it refuses connections):
    a configuration or network problem that retrying with backoff would only hide, so it fails
    at once instead of being retried like a rate limit."""


class RateLimited(SourceError):
    """The source asked us to slow down (HTTP 429/418, YFRateLimitError)."""

    def __init__(self, source: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(source, message)
        self.retry_after = retry_after


class BadPayload(SourceError):
    """The response was malformed, truncated, or its fields changed."""


class SymbolUnavailable(SourceError):
    """The source does not list this token (delisted, merged, renamed or never listed)."""


class HistoryLimitExceeded(SourceError):
    """The window asked for reaches further back than the source or plan allows."""


class DatasetNotSupported(SourceError):
    """The source does not serve this dataset (e.g. order books from Yahoo)."""


class WarehouseUnavailable(CryptoAnalyticsError):
    """The warehouse cannot be reached, refuses us, or did not answer in time."""


class LoadError(CryptoAnalyticsError):
    """A batch could not be written to the warehouse; nothing of it was committed."""


class DataQualityError(CryptoAnalyticsError):
    """Landed data failed a post-load check; the message lists every failing check."""


class TransformError(CryptoAnalyticsError):
    """dbt could not run (bad project, unreachable warehouse, a model's SQL or a unit test failed)."""


class NotificationError(CryptoAnalyticsError):
    """A notification (e-mail, webhook) could not be delivered; what it carried is kept elsewhere."""


class CacheUnavailable(CryptoAnalyticsError):
    """The serving cache (Redis) did not answer; readers compute without it, a refresh fails."""
