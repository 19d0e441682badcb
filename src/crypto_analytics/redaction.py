"""One redaction for every text that leaves the process: error messages, log lines, the audit
table and the lake's request records.

Why one function rather than care at each call site: secrets reach text by routes nobody plans
(a password in a database URL's query string echoed by a connection error, an API key a server
repeats in its error body, a session crumb in a URL a library puts in its exception). So every
error the platform raises passes its message through `redact` when it is created
(`errors.CryptoAnalyticsError`), the CLI's log handlers carry `RedactingFilter`, and the audit and
lake writers call `redact` on what they store. It masks, wherever they appear:

- the password in a URL's user-info (`scheme://user:password@host`),
- query parameters and `key=value` / `"key": "value"` pairs whose name says secret (password,
  token, api key, secret, crumb, signature, ...), and `Authorization` header values,
- the literal values of secrets we know: environment variables whose name says secret
  (`*_PASSWORD`, `*_KEY`, `*_SECRET`, `*_TOKEN`, `*_WEBHOOK_URL`, ...), passwords inside URL-valued
  environment variables (`CRYPTO_DATABASE_URL`, `REDIS_URL`), and values passed to
  `register_secret` (the settings register every `SecretStr` they hold).
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"

#: Parameter and field names whose values are secrets (matched against the whole name).
_SECRET_NAME_PATTERN = (
    r"(?:[\w.-]*(?:pass(?:word|wd)?|pwd|secret|token|api[-_]?key|apikey|access[-_]?key|"
    r"private[-_]?key|credential|signature|crumb|cookie|session[-_]?id|authori[sz]ation)[\w.-]*|"
    r"key|sig|auth)"
)
_SECRET_NAME = re.compile(_SECRET_NAME_PATTERN, re.IGNORECASE)
#: Environment variables whose values are secrets.
_SECRET_ENV = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|_KEY$|WEBHOOK|CREDENTIAL|_DSN$)", re.IGNORECASE
)
#: Environment variables holding URLs that may carry a password.
_URL_ENV = re.compile(r"(_URL|_URI|_DSN|_CONN)$", re.IGNORECASE)
#: Shorter values are not masked by literal match: "1", "true" or "demo" would mangle every text.
_MIN_SECRET_LENGTH = 6

_URL_USERINFO = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s/:@?#]*):(?P<secret>[^\s@/?#]*)@", re.I
)
_QUERY_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[A-Za-z0-9_.\-]+)=)(?P<secret>[^&#\s'\"]*)")
_KEY_VALUE = re.compile(
    rf"(?P<head>(?<![\w.-])(?P<name>{_SECRET_NAME_PATTERN})\s*[=:]\s*)(?P<quote>['\"]?)"
    r"(?P<scheme>(?:bearer|basic|token)\s+)?(?P<secret>[^\s'\"&,;(){}\[\]]+)",
    re.IGNORECASE,
)
_QUOTED_FIELD = re.compile(
    r"(?P<head>(?P<q>['\"])(?P<name>[A-Za-z0-9_.\-]+)(?P=q)\s*:\s*)(?P<quote>['\"])"
    r"(?P<secret>.*?)(?P=quote)"
)
_HEADER = re.compile(
    r"(?P<head>\b(?P<name>(?:proxy-)?authorization|x-[A-Za-z0-9\-]*(?:key|token|secret|auth)"
    r"[A-Za-z0-9\-]*|cookie|set-cookie)\s*:\s*)(?P<scheme>(?:bearer|basic|token|digest)\s+)?"
    r"(?P<secret>[^\s'\",}]+)",
    re.IGNORECASE,
)

_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value (and its URL-encoded forms) wherever it appears from now on."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _registered.add(value)
        password = _url_password(value)
        if password:
            _registered.add(password)


def _url_password(value: str) -> str | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.password and len(unquote(parts.password)) >= _MIN_SECRET_LENGTH:
        return unquote(parts.password)
    for pair in parts.query.split("&"):
        name, _, secret = pair.partition("=")
        if secret and _SECRET_NAME.fullmatch(name) and len(unquote(secret)) >= _MIN_SECRET_LENGTH:
            return unquote(secret)
    return None


def known_secrets() -> set[str]:
    """Registered values plus the secret values in the environment right now."""
    found = set(_registered)
    for name, value in os.environ.items():
        if not value:
            continue
        if _SECRET_ENV.search(name) and len(value) >= _MIN_SECRET_LENGTH:
            found.add(value)
        if _URL_ENV.search(name) or "://" in value:
            password = _url_password(value)
            if password:
                found.add(password)
    return found


def _mask_if_secret_name(match: re.Match[str]) -> str:
    if not _SECRET_NAME.fullmatch(match.group("name")) or not match.group("secret"):
        return match.group(0)
    groups = match.groupdict()
    return f"{match.group('head')}{groups.get('quote') or ''}{groups.get('scheme') or ''}{MASK}"


def _mask_quoted_field(match: re.Match[str]) -> str:
    if not _SECRET_NAME.fullmatch(match.group("name")) or not match.group("secret"):
        return match.group(0)
    return f"{match.group('head')}{match.group('quote')}{MASK}{match.group('quote')}"


def _mask_header(match: re.Match[str]) -> str:
    return f"{match.group('head')}{match.group('scheme') or ''}{MASK}"


def redact(text: str) -> str:
    """The text with every secret we can recognise replaced by ***."""
    if not text:
        return text
    for secret in sorted(known_secrets(), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            if form in text:
                text = text.replace(form, MASK)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    text = _QUERY_PARAM.sub(_mask_if_secret_name, text)
    text = _QUOTED_FIELD.sub(_mask_quoted_field, text)
    text = _HEADER.sub(_mask_header, text)
    return _KEY_VALUE.sub(_mask_if_secret_name, text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the formatted message (and any exception text) of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add RedactingFilter to every handler of a logger (the root by default), once each."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
