"""Adapters of the scoring domain to outside services, each behind a protocol: the feature
store on Redis (``redis_store``, behind ``scoring.features.store.FeatureStore``)."""
