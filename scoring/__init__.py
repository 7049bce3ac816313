"""Features, models, decisions and reason codes, the feature store and the REST facade."""
