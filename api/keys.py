"""API keys: who may call, and what each may do."""

import dataclasses

PREDICT, LABELS = "predict", "labels"  # what a key may do
SCOPES = frozenset({PREDICT, LABELS})
API_KEY_HEADER = "X-API-Key"


@dataclasses.dataclass(frozen=True)
class ApiKey:
    name: str  # what logs and metrics show; never the secret
    secret: str
    scopes: frozenset[str] = SCOPES


def parse_keys(text: str) -> dict[str, ApiKey]:
    """Keys from ``name:secret[:scope+scope]`` entries separated by commas or new lines.

    >>> keys = parse_keys("checkout:checkout-secret-01:predict, team:fraud-team-secret-02")
    >>> sorted((k.name, sorted(k.scopes)) for k in keys.values())
    [('checkout', ['predict']), ('team', ['labels', 'predict'])]
    """
    keys: dict[str, ApiKey] = {}
    for entry in text.replace("\n", ",").split(","):
        if not entry.strip():
            continue
        parts = [part.strip() for part in entry.split(":")]
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise ValueError("an API key entry is name:secret or name:secret:scope+scope")
        scopes = frozenset(parts[2].split("+")) if len(parts) == 3 else SCOPES
        if unknown := scopes - SCOPES:
            raise ValueError(f"unknown API key scope(s) {sorted(unknown)} for {parts[0]!r}")
        if len(parts[1]) < 16:
            raise ValueError(f"the API key of {parts[0]!r} is shorter than 16 characters")
        keys[parts[1]] = ApiKey(parts[0], parts[1], scopes)
    return keys
