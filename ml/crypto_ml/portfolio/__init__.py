"""Portfolio optimisation on gold daily returns: inputs, optimisers, Monte Carlo, risk, backtest,
rebalancing and the weekly report.

Numeric modules are pure functions over a returns or prices frame (rows dates, columns symbols)
with `periods_per_year` (365) as a parameter: `estimators` (expected returns, covariance),
`inputs` (which tokens are eligible and why not), `constraints` (bounds, category and stablecoin
caps, feasibility), `optimizers` (max-Sharpe, min-volatility, frontier, HRP, equal weight),
`montecarlo`, `risk`, `backtest`, `holdings` and `rebalancing`. `store` keeps every run in the
`portfolio` schema, `pipeline` chains the steps for the CLI and the DAG, `report` renders them.
Nothing heavy is imported here, so the CLI and the DAG file stay quick to load.
"""
