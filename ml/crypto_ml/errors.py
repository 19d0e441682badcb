"""The exceptions of the analytics package, rooted in the platform's hierarchy.

Why derive from `crypto_analytics.errors`: the CLI and the DAG tasks already turn a
`CryptoAnalyticsError` into one clear line (or a failed task naming it); forecasting and portfolio
errors get the same treatment without a second set of handlers.
"""

from __future__ import annotations

from crypto_analytics.errors import ConfigError, CryptoAnalyticsError


class AnalyticsError(CryptoAnalyticsError):
    """Base class for every error crypto_ml raises on purpose."""


class NotEnoughData(AnalyticsError):
    """Gold holds too little (or no) history for what was asked; the message says what to run."""


class InvalidInput(AnalyticsError, ConfigError):
    """A user argument or setting for a model or an optimiser is invalid; the message names it."""
