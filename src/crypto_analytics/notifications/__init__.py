"""Outbound notifications: e-mail over SMTP (and webhooks) for reports and alerts."""
