"""One behaviour for every command line of the project: bad input is one line, exit status 2.

argparse and jsonargparse print a usage block (60 lines for train.py) and, for a bad value of a
typed option, a multi-line ``Parser key ...`` report; long options are also matched by prefix,
so ``--trainer.max_epoch 1`` was silently taken as ``--trainer.max_epochs``. The parsers here
turn every parse error into ``<prog>: error: <one line>`` that names the option and what is
allowed (or the closest option), and never match prefixes.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import types
import typing
from typing import Any, NoReturn

import jsonargparse


def option_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every ``--long`` option string the parser (and its sub-commands) knows."""
    names = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            names += [n for sub in action.choices.values() for n in option_names(sub)]
    return list(dict.fromkeys(names))


def suggest(option: str, known: list[str]) -> str:
    """`` (did you mean --x?)`` for the closest known option, or ``""``."""
    match = difflib.get_close_matches(option, known, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _action(parser: argparse.ArgumentParser, dest: str) -> argparse.Action | None:
    return next((a for a in parser._actions if a.dest == dest), None)


def _choices_of(action: argparse.Action | None) -> list[str] | None:
    """The allowed values of an option if it is a ``Literal`` (or has argparse choices)."""
    if action is None:
        return None
    if action.choices:
        return [str(c) for c in action.choices]
    hint = getattr(action, "_typehint", None)
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    values = [v for a in args if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)]
    return [str(v) for v in values] or None


def type_name(hint: Any) -> str:
    """``int``, ``int | None``, ``list[str]``: a type as a user writes it."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


def one_line(parser: argparse.ArgumentParser, message: str) -> str:
    """A parse error message in one line that names the option and what it accepts."""
    known = option_names(parser)
    unknown = re.match(r"unrecognized arguments: (.*)", message, re.S)
    if unknown:
        options = [t.split("=", 1)[0] for t in unknown.group(1).split() if t.startswith("-")]
        if options:
            return "; ".join(f"unknown option {o}{suggest(o, known)}" for o in options)
        return f"unexpected argument(s) {unknown.group(1).strip()}"
    choice = re.match(r"argument ([^:]+): invalid choice: (.*) \(choose from (.*)\)", message)
    if choice:  # argparse's choices
        return f"{choice.group(1).split('/')[-1]}: {choice.group(2)} is not one of {choice.group(3).replace(chr(39), '')}"
    group = re.match(r"Group '([^']+)' does not accept option '([^']+)'", message)
    if group:  # a typo'd key in a config file
        key = f"{group.group(1)}.{group.group(2)}"
        return f"unknown key {key}{suggest('--' + key, known).replace('--', '')}"
    key = re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.S)
    if key:
        dest, detail = key.group(1), key.group(2)
        action = _action(parser, dest)
        got = re.search(r"(?:Got|Given) value: (.*?)\s*$", detail, re.M)
        choices = _choices_of(action)
        if choices and got:
            return f"--{dest}: {got.group(1)!r} is not one of {', '.join(choices)}"
        hint = getattr(action, "_typehint", None)
        if got and hint is not None:
            return f"--{dest}: {got.group(1)!r} is not a valid {type_name(hint)}"
        return f"--{dest}: {' '.join(detail.split())[:300]}"
    return " ".join(message.split())[:400]


class OneLineErrors:
    """Mixin for argparse/jsonargparse parsers: ``prog: error: <one line>``, exit 2, no prefix matching."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:  # noqa: D401 - argparse API
        if not getattr(self, "exit_on_error", True):
            raise argparse.ArgumentError(None, message)
        prog = str(getattr(self, "prog", "")).replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {one_line(self, message)} (see --help)\n")  # type: ignore[arg-type]
        sys.exit(2)


class ArgumentParser(OneLineErrors, jsonargparse.ArgumentParser):
    """jsonargparse's parser with one-line errors and no prefix matching of long options."""


class PlainArgumentParser(OneLineErrors, argparse.ArgumentParser):
    """argparse's parser (sub-commands, the diagnostics CLI) with the same behaviour."""
