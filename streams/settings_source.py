"""How the settings are read: pydantic-settings' environment source over a mapping, and its
validation errors said as one line a variable (``streams.settings`` uses both)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars


class EnvMapping(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]) -> None:
        self._variables = variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._variables, case_sensitive=False)


def explain(error: ValidationError, named: Mapping[str, str], prefix: str) -> str:
    """One line a bad variable: its public name, what is wrong, and the value given."""
    lines = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        variable = f"{prefix}{field.removesuffix('_override').upper()}"
        given = named.get(f"{prefix}{field}")
        shown = f", got {given!r}" if given is not None and field != "api_keys" else ""
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{variable}: {message}{shown}" if field else message)
    return "; ".join(lines)
