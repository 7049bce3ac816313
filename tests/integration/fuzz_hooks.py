"""Schemathesis hooks for the fuzz of the REST API (``SCHEMATHESIS_HOOKS``).

What the document states in words and JSON Schema cannot: an ``event_time`` is accepted
within a window around the server's clock (``FRAUD_MAX_FUTURE_SKEW`` ahead at most, see the
field's description). The fuzz generates date-times as a live payment system sends them,
from the last 30 days; everything else is generated from the schema as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import schemathesis
from hypothesis import strategies as st

_now = datetime.now(UTC).replace(tzinfo=None)
RECENT = st.datetimes(min_value=_now - timedelta(days=30), max_value=_now).map(
    lambda moment: moment.replace(tzinfo=UTC).isoformat()
)

schemathesis.openapi.format("date-time", RECENT)
