"""The command line explains itself: every option has help and shows its default."""

from __future__ import annotations

import argparse

import pytest

from streams.app import AGENTS
from tooling import cli


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    [group] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(group.choices)


def test_every_option_of_every_command_has_help() -> None:
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, command in subcommands().items()
        for action in command._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]

    assert missing == []


def test_help_shows_defaults_and_worker_help_names_every_agent() -> None:
    commands = subcommands()

    assert "(default: 2000.0)" in commands["bench"].format_help()
    worker_help = commands["worker"].format_help()
    assert set(cli.AGENT_HELP) == set(AGENTS)
    assert all(f"\n  {agent} " in worker_help for agent in AGENTS)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])

    assert exited.value.code == 0 and capsys.readouterr().out.startswith("fraudstream ")
