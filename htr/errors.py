"""One error base for the project and one way out of every command line.

Every error the project raises for something a user can fix (a bad option value, a missing or
unreadable file, a dataset that cannot be read) is an :class:`HTRError`; its ``str()`` is the
one line the user sees. :func:`run_main` runs an entry point's ``main``: an :class:`HTRError`
(or a missing/unreadable file) becomes ``prog: error: <message>`` on stderr and exit status 2
(or the error's own ``exit_code``), Ctrl+C exits 130, and anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

# Standard errors that are a user's input, not a bug: a path that is missing, a folder where a
# file was expected (or the reverse, or a file where a folder is to be made), no permission.
USER_OS_ERRORS: tuple[type[OSError], ...] = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


class HTRError(Exception):
    """Every project error; its str() is the one line a user sees (it names the option or file
    and what to do). ``exit_code`` is the command line's exit status when it ends with it."""

    exit_code: int = 2


class UsageError(HTRError):
    """Bad command-line input (an unknown option, a value the parser rejects)."""


class ConfigError(HTRError, ValueError):
    """A setting given a value it cannot take: ``--data.batch_size: must be >= 1, got -3``.

    ``option`` is the setting's name where its class is configured (``data.batch_size``,
    ``model.lr``); a command line that nests the class deeper names the setting in full."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"--{option}: {problem}")
        self.option, self.problem = option, problem


def at_least(option: str, value: float | None, low: float) -> None:
    """Raise :class:`ConfigError` unless ``value >= low`` (``None``: unset, allowed)."""
    if value is not None and not value >= low:  # "not >=": NaN fails too
        raise ConfigError(option, f"must be >= {low}, got {value}")


def in_range(option: str, value: float, low: float, high: float) -> None:
    """Raise :class:`ConfigError` unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ConfigError(option, f"must be in {low}..{high}, got {value}")


def positive(option: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value > 0``."""
    if not value > 0:
        raise ConfigError(option, f"must be > 0, got {value}")


def user_message(err: BaseException) -> str | None:
    """The one line for an error that is the user's to fix, or ``None`` for a bug."""
    if isinstance(err, HTRError):
        message = str(err)
    elif isinstance(err, USER_OS_ERRORS):
        message = f"{err.filename}: {err.strerror}" if err.filename else str(err)
    else:
        return None
    return " ".join(message.splitlines())  # the promise is one line, whatever a message holds


def run_main(main: Callable[[list[str] | None], int | None], argv: Sequence[str] | None = None, *, prog: str, log_level: int = logging.INFO) -> NoReturn:
    """Run an entry point's ``main(argv)`` and exit with its status (``None``: 0).

    Sets up logging as every entry point does (``LEVEL logger: message`` on stderr); a user's
    error is one line ``prog: error: <message>``, exit 2 (or its ``exit_code``)."""
    logging.basicConfig(level=log_level, format=LOG_FORMAT)
    try:
        code = main(None if argv is None else list(argv))
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.write(f"{prog}: interrupted\n")
        sys.exit(130)
    except Exception as err:
        message = user_message(err)
        if message is None:
            raise  # a bug: its traceback is what a report needs
        sys.stdout.flush()  # what was printed before the error stays before it
        sys.stderr.write(f"{prog}: error: {message}\n")
        sys.exit(getattr(err, "exit_code", 2))
    sys.exit(code or 0)
