"""Long-horizon time-series forecasting (many-to-one, direct multi-step)."""
