"""API keys: who may call, and what each may do."""

import dataclasses
import re

PREDICT, LABELS = "predict", "labels"  # what a key may do
SCOPES = frozenset({PREDICT, LABELS})
API_KEY_HEADER = "X-API-Key"
MIN_LENGTH, MIN_DISTINCT = 16, 10
SECRET_CHARACTERS = re.compile(r"[A-Za-z0-9._~+/=-]+")  # hex, base64 and URL-safe tokens


def weak(secret: str) -> str | None:
    """What makes ``secret`` unfit for a key (None: fit). A generated token passes; a shell
    command that was never run (``$(openssl rand -hex 16)`` copied literally from a
    template), a word or a repeated character does not.

    >>> weak("3f9c2a7d41e08b6c5a9d2e7f10b4c8a6") is None
    True
    >>> weak("$(openssl rand -hex 16)")
    'holds characters a generated key has not (such as $, spaces or brackets): generate one'
    >>> weak("aaaaaaaaaaaaaaaaaaaa")
    'has fewer than 10 distinct characters: generate one'
    """
    if len(secret) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    if not SECRET_CHARACTERS.fullmatch(secret):
        return (
            "holds characters a generated key has not (such as $, spaces or brackets): generate one"
        )
    if len(set(secret)) < MIN_DISTINCT:
        return f"has fewer than {MIN_DISTINCT} distinct characters: generate one"
    return None


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
        if problem := weak(parts[1]):
            raise ValueError(f"the API key of {parts[0]!r} {problem}")
        keys[parts[1]] = ApiKey(parts[0], parts[1], scopes)
    return keys
