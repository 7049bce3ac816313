"""Adapters of the retraining domain to outside services, each behind a protocol: the MLflow
registry (``mlflow_registry``, behind ``retraining.registry.ModelRegistry``) and the
Evidently drift report (``evidently_report``)."""
