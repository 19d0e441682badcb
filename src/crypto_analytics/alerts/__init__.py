"""One alert engine: rules from config/alerts.yaml, evaluated on gold (after each gold build) and on
the live stream (price rules), with state, cooldown, de-duplication and an outbox per channel."""
