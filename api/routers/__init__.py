"""One router per resource: ``predict`` (/predict, /predict/batch), ``labels``, ``model``,
``health`` (/health, /ready, /metrics)."""
