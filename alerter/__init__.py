"""The alerter: the price table's stream consumer (alert rule + rank window statistics)."""
