"""Forecasting and portfolio optimisation on the gold layer of the crypto analytics platform.

A second package beside `crypto_analytics`, installed by the same pyproject: it reads gold only
(`crypto_ml.data` is its one module that runs SQL), writes its results to its own warehouse
schemas, and leaves exposing them in gold to dbt.
"""

__version__ = "0.1.0"
