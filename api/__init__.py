"""The REST facade: the stream's score, synchronously, for callers that cannot wait.

``create_app`` (``api.app``) takes ready parts (the scoring pipeline on the online feature
store, the model holder, a publisher, the idempotency store, readiness checks), so this package
knows neither Kafka nor Redis; ``streams.rest`` wires the real ones. A call computes the
features from the current state exactly as the stream does (the transaction itself included)
and never writes them: the stream is the one writer of feature state. With ``record`` on, the
transaction is also published to ``transactions``, where the stream scores it into the same
state.

Modules: ``app`` (the factory), ``parts`` (what it takes), ``deps`` (the dependencies the
routes declare), ``routers/`` (one per resource), ``middleware``, ``rate_limit``,
``idempotency``, ``coalescer``, ``fast_path`` (``POST /predict`` as a plain ASGI call),
``answers`` and ``models`` (what the routes answer), ``keys``, ``metrics``.
"""

from api.app import create_app
from api.keys import ApiKey, parse_keys
from api.parts import ApiConfig, ApiParts

__all__ = ["ApiConfig", "ApiKey", "ApiParts", "create_app", "parse_keys"]
