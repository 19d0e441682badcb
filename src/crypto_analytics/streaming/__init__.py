"""Real-time candles: a long-running consumer of Binance's combined kline stream (or the offline
synthetic minute feed) that lands closed candles in bronze through the batch loader, backfills
whatever a disconnect missed over REST, and keeps a heartbeat for the data-health page."""
