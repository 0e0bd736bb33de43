"""excess.anomaly."""
