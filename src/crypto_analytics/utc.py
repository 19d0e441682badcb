"""One reading of the times people and APIs give us: aware UTC, naive meaning UTC.

Why a module: the CLI's --since/--until, the bronze DAG's params and the fetch requests handed
between Airflow tasks each parsed ISO-8601 on their own, three copies that could disagree on a
naive time or an offset. Everything now reads times through `parse_utc`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from crypto_analytics.errors import ConfigError


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_utc(value: str, what: str) -> datetime:
    """An ISO-8601 date or timestamp as aware UTC (no offset means UTC); ConfigError naming
    `what` (an option or param name) and the accepted forms otherwise."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError, TypeError):
        raise ConfigError(
            f"{what} {value!r} is not a date or ISO timestamp (e.g. 2024-01-31 or "
            "2024-01-31T12:00, UTC unless it carries an offset)"
        ) from None
    return as_utc(parsed)
