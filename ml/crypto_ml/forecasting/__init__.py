"""Price and volatility forecasting on gold: baselines, Prophet, a global LSTM, quantile gradient
boosting, GARCH(1,1) and a calibrated ensemble, judged by a walk-forward backtest and tracked in
MLflow. Modules by concept: `panel` (the data as models see it), `folds` (the backtest plan),
one module per model family, `ensemble`/`conformal`, `metrics`, `backtest`, `registry`, `drift`,
`store` (writes schema ml), `pipeline` (the stages the CLI and the Airflow DAGs call).
"""
