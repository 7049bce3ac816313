"""Datasets, training candidates, metrics, drift statistics, the registry gate and the trainer."""
