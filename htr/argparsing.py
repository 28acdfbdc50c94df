"""One behaviour for every command line of the project: bad input is one line, exit status 2.

argparse and jsonargparse print a usage block (60 lines for train.py) and, for a bad value of a
typed option, a multi-line ``Parser key ...`` report; long options are also matched by prefix,
so ``--trainer.max_epoch 1`` was silently taken as ``--trainer.max_epochs``. The parsers here
turn every parse error into a :class:`htr.errors.UsageError` of one line that names the option
and what is allowed (or the closest option), and never match prefixes; ``htr.errors.run_main``
prints it as ``<prog>: error: <one line>`` and exits 2.
"""

from __future__ import annotations

import argparse
import difflib
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn

import jsonargparse

from htr.errors import UsageError


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


def _long_name(names: str) -> str:
    """``--max_shift`` of argparse's ``--max_shift/--max-shift`` (the first long spelling)."""
    parts = names.split("/")
    return next((p for p in parts if p.startswith("--")), parts[-1])


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an int ``>= low`` (and ``<= high``); ``--window 0`` is then the
    one line ``--window: must be >= 1, got 0``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}" if high is None else f"must be in {low}..{high}, got {value}")
        return value

    return parse


def float_or(*words: str) -> Callable[[str], float | str]:
    """An argparse ``type``: a float, or one of ``words`` as it is (``--vmax 0.25`` or ``--vmax auto``)."""
    def parse(text: str) -> float | str:
        if text in words:
            return text
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor {' or '.join(map(repr, words))}") from None

    return parse


def output_file(kind: Literal["figure", "image"]) -> Callable[[str], str]:
    """An argparse ``type``: a file name matplotlib (``figure``) or Pillow (``image``) can write,
    checked by its suffix before any work is done."""
    def parse(path: str) -> str:
        if kind == "figure":
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            suffixes = {f".{s}" for s in FigureCanvasAgg(Figure()).get_supported_filetypes()}
        else:
            from PIL import Image

            suffixes = set(Image.registered_extensions())
        if Path(path).suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{path}: {Path(path).suffix or '(no suffix)'!r} is not a format for {kind}s; use e.g. .png")
        return path

    return parse


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
        return f"{_long_name(choice.group(1))}: {choice.group(2)} is not one of {choice.group(3).replace(chr(39), '')}"
    value = re.match(r"argument ([^:]+): (.*)", message, re.S)
    if value:  # argparse's own checks and the types below: "argument --max_shift/--max-shift: invalid int value: 'x'"
        return f"{_long_name(value.group(1))}: {' '.join(value.group(2).split())}"
    config = re.match(r"Problems parsing config\s*:\s*(.*)", message, re.S)
    if config:  # a --config file that is not YAML (jsonargparse does not say which file)
        return f"--config: not a valid YAML config ({' '.join(config.group(1).split())[:300]})"
    group = re.match(r"Group '([^']+)' does not accept option '([^']+)'", message)
    if group:  # a typo'd key in a config file
        key = f"{group.group(1)}.{group.group(2)}"
        return f"unknown key {key}{suggest('--' + key, known).replace('--', '')}"
    key = re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.S)
    if key:
        dest, detail = key.group(1), key.group(2)
        nested = re.findall(r"NestedArg\(key='([^']+)'", detail)
        configured = re.split(r"\n {4}- ", detail)[1] if "\n    - " in detail else ""  # the configured class's errors, not the alternatives'
        inner = re.findall(r'Parser key "[^"]+":\s*(.+)', configured)
        if nested and re.search(r"Option '[^']+' is not accepted", configured):
            return f"unknown option --{dest}.init_args.{nested[-1]}"
        if nested and inner:  # a value inside a class-typed option: --trainer.callbacks.init_args.settings.num_probes
            what = inner[-1].strip()
            expected = re.match(r"Expected a <class '(\w+)'>\. Got value: (.*)", what)
            return f"--{dest}.init_args.{nested[-1]}: " + (f"{expected.group(2)!r} is not a valid {expected.group(1)}" if expected else what)
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
    """Mixin for argparse/jsonargparse parsers: a parse error raises a one-line UsageError; no prefix matching."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:  # noqa: D401 - argparse API
        if not getattr(self, "exit_on_error", True):  # a nested parser trying alternatives: not the user's error yet
            raise argparse.ArgumentError(None, message)
        raise UsageError(f"{one_line(self, message)} (see --help)")  # type: ignore[arg-type]


class ArgumentParser(OneLineErrors, jsonargparse.ArgumentParser):
    """jsonargparse's parser with one-line errors and no prefix matching of long options."""


class PlainArgumentParser(OneLineErrors, argparse.ArgumentParser):
    """argparse's parser (sub-commands, the diagnostics CLI) with the same behaviour."""
