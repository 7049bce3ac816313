"""Primary account numbers (full card numbers) must never reach a topic, log or file.

>>> luhn_valid("4111111111111111")
True
>>> looks_like_pan("4111 1111 1111 1111"), looks_like_pan("card-000042")
(True, False)
>>> redact_pans(b'{"card_id": "4111111111111111", "amount": 12}')
b'{"card_id": "************1111", "amount": 12}'
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[ -]")
_DIGIT_RUN = re.compile(rb"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def looks_like_pan(value: str) -> bool:
    """13 to 19 digits (spaces or dashes allowed between them) that pass the Luhn check."""
    digits = _SEPARATORS.sub("", value)
    return 13 <= len(digits) <= 19 and digits.isdigit() and luhn_valid(digits)


def redact_pans(raw: bytes) -> bytes:
    """Mask every PAN-like digit run in ``raw``, keeping only its last four digits."""

    def mask(match: re.Match[bytes]) -> bytes:
        text = match.group(0)
        digits = re.sub(rb"[ -]", b"", text)
        if not luhn_valid(digits.decode()):
            return text
        return b"*" * (len(digits) - 4) + digits[-4:]

    return _DIGIT_RUN.sub(mask, raw)
