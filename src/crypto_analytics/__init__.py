"""Crypto analytics platform: ingestion into a Postgres medallion warehouse."""

__version__ = "0.1.0"
