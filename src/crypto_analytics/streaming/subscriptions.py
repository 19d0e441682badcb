"""Which tokens a stream carries, and their names on the wire.

Why a mapping object: Binance names a market `BTCUSDT` in messages and `btcusdt@kline_1m` in
stream names, the universe calls it `BTC`, and bronze needs its quote currency. Both feeds build
the same mapping, so the consumer never guesses a symbol from a string.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto_analytics.config import Settings, Token, tokens_for_source
from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.sources.synthetic import QUOTE_CURRENCY as SYNTHETIC_QUOTE


@dataclass(frozen=True)
class Subscription:
    """One token on one feed: universe symbol, the feed's market id, and the quote currency."""

    token: Token
    market: str  # as messages spell it (field `s`/`k.s`): BTCUSDT
    quote_currency: str

    @property
    def symbol(self) -> str:
        return self.token.symbol

    def stream_name(self, interval: str) -> str:
        """Binance's stream name: lower-case market, e.g. btcusdt@kline_1m."""
        return f"{self.market.lower()}@kline_{interval}"


def _requested(settings: Settings, symbols: list[str] | None) -> list[Token]:
    wanted = symbols if symbols else settings.stream.symbols
    return settings.select_tokens(wanted)


def binance_subscriptions(
    settings: Settings, symbols: list[str] | None = None
) -> list[Subscription]:
    """The streamed tokens' Binance spot markets (their `exchange` pair without the slash).

    Named tokens Binance does not list are an error with the configured reason; with no names
    (stream.symbols empty) every token with an exchange pair is streamed."""
    tokens = _requested(settings, symbols)
    explicit = bool(symbols or settings.stream.symbols)
    if explicit:
        for token in tokens:
            if token.exchange is None:
                raise ConfigError(
                    f"{token.symbol} cannot be streamed from Binance: "
                    f"{token.unavailable.get('exchange', 'no exchange pair configured')}"
                )
    subscriptions = []
    for token, pair in tokens_for_source(tokens, "exchange"):
        base, _, quote = pair.partition("/")
        if not quote:
            raise ConfigError(f"{token.symbol}: exchange pair {pair!r} must look like BASE/QUOTE")
        subscriptions.append(Subscription(token, f"{base}{quote}".upper(), quote.upper()))
    if not subscriptions:
        raise ConfigError("no token to stream: stream.symbols names none Binance lists")
    return subscriptions


def synthetic_subscriptions(
    settings: Settings, symbols: list[str] | None = None
) -> list[Subscription]:
    """Every requested token (the synthetic market serves the whole universe), quoted in USD."""
    return [
        Subscription(token, f"{token.symbol}{SYNTHETIC_QUOTE}", SYNTHETIC_QUOTE)
        for token in _requested(settings, symbols)
    ]
