"""The README's table of settings, made from the settings class so the two cannot part.

>>> print(markdown_table().splitlines()[2])
| `FRAUD_HOME` | `.fraudstream` | where the local services and workers keep state |
"""

from __future__ import annotations

from pathlib import Path

from streams.settings import PREFIX, Settings

BEGIN = "<!-- settings: made by `fraudstream settings --readme`; a test compares -->"
END = "<!-- settings: end -->"


def markdown_table() -> str:
    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        variable = f"{PREFIX}{name.removesuffix('_override').upper()}"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        shown = extra.get("shown")
        default = _shown(field.default) if shown is None else f"`{shown}`"
        rows.append(f"| `{variable}` | {default} | {field.description} |")
    return "\n".join(rows) + "\n"


def _shown(value: object) -> str:
    """A default as the README gives it.

    >>> [_shown(v) for v in (None, "", True, 5000.0, 0.005, Path(".x"))]
    ['none', 'empty', '`true`', '`5000`', '`0.005`', '`.x`']
    """
    if value is None:
        return "none"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def with_table(readme: str) -> str:
    """``readme`` with the text between the markers replaced by the current table."""
    head, found, rest = readme.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"the README has no {BEGIN!r} ... {END!r} block")
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


def rewrite(readme: Path) -> bool:
    """Write the current table into ``readme``; whether it changed."""
    text = readme.read_text()
    updated = with_table(text)
    readme.write_text(updated)
    return updated != text
