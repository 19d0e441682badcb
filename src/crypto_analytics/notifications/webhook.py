"""Webhooks: one JSON POST per notification, in Slack's incoming-webhook shape by default.

Why Slack's shape: Slack, Mattermost and Rocket.Chat accept `{"text", "blocks"}`, and any other
receiver can read `text`. Why no retry loop here: the caller's outbox (alerts.deliveries) owns
retries across process restarts; this module makes one attempt with a timeout and says why it
failed. The URL carries a token (hooks.slack.com/services/T../B../secret), so errors and logs name
only its scheme and host, never its path or query.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from crypto_analytics.errors import ConfigError, NotificationError

log = logging.getLogger(__name__)

#: Slack truncates a section's text beyond 3000 characters.
_SECTION_LIMIT = 2900


def safe_target(url: str) -> str:
    """scheme://host[:port] of a webhook URL: what may appear in a log line or an error."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _escape(text: str) -> str:
    """Slack reads &, < and > as markup (`<!channel>` would ping everyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(
    title: str, text: str, fields: Sequence[tuple[str, str]] = (), context: str | None = None
) -> dict[str, Any]:
    """A Slack Block Kit message: a header, the text, a grid of fields and a context line.

    `text` doubles as the notification fallback that Slack shows where blocks are not rendered."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(text)[:_SECTION_LIMIT]}},
    ]
    if fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_escape(name)}*\n{_escape(value)}"[:2000]}
                    for name, value in list(fields)[:10]
                ],
            }
        )
    if context:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)[:2000]}]}
        )
    return {"text": f"{title}: {text}"[:_SECTION_LIMIT], "blocks": blocks}


def post_json(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float,
    session: requests.Session | None = None,
) -> None:
    """POST the payload as JSON once; NotificationError (naming only the host) unless 2xx."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            "ALERT_WEBHOOK_URL must be an http(s) URL such as https://hooks.slack.com/services/..."
        )
    target = safe_target(url)
    body = json.dumps(payload, default=str).encode()
    poster = session or requests
    try:
        response = poster.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout
        )
    # `from None`: requests' own messages quote the full URL, token included
    except requests.Timeout:
        raise NotificationError(f"webhook {target}: no answer within {timeout:g}s") from None
    except requests.RequestException as exc:
        raise NotificationError(f"webhook {target}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        snippet = response.text[:200].replace("\n", " ")
        raise NotificationError(f"webhook {target} answered HTTP {response.status_code}: {snippet}")
    log.info("webhook %s accepted the notification (HTTP %d)", target, response.status_code)
