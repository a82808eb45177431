"""Metrics: multi-label ranking and thresholds (multilabel), per-video single-label metrics (video)."""
