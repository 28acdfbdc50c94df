"""Run many command lines in one process, each as ``python SCRIPT`` / ``python -m MODULE`` runs it.

    python tests/cli_driver.py CASES.json RESULTS.json

CASES.json is a list of ``{"entry": "train.py" | "-m htr.diagnostics", "argv": [...]}``; each case
runs the entry point's real ``if __name__ == "__main__":`` block (runpy) with ``sys.argv`` set,
its stdout and stderr captured at the file-descriptor level (so log handlers, warnings and C
libraries are caught too). RESULTS.json gets ``{"code", "stdout", "stderr"}`` per case. Startup
(torch, Lightning) is paid once per driver instead of once per case: tests/test_cli_errors.py
drives dozens of bad command lines this way.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any

CASE_TIMEOUT_S = 120  # a case that does not fail (an explorer that serves, a training) is cut off


class CaseTimeout(BaseException):
    """Raised in the case by SIGALRM (a BaseException: no ``except Exception`` swallows it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout(f"case still running after {CASE_TIMEOUT_S} s")


def run_case(entry: str, argv: list[str]) -> dict[str, Any]:
    """Run one command line; its exit code (``"timeout"``/``"no exit"`` if it did not exit) and output."""
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    files = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    code: Any = "no exit"
    sys.stdout.flush(), sys.stderr.flush()
    for fd, fh in files.items():
        os.dup2(fh.fileno(), fd)
    old_argv = sys.argv
    signal.alarm(CASE_TIMEOUT_S)
    try:
        if entry.startswith("-m "):
            sys.argv = [entry[3:], *argv]
            runpy.run_module(entry[3:], run_name="__main__", alter_sys=True)
        else:
            sys.argv = [entry, *argv]
            runpy.run_path(entry, run_name="__main__")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except CaseTimeout:
        code = "timeout"
    except BaseException:  # noqa: BLE001 - an escaped error is what the test reports
        traceback.print_exc()
        code = "exception"
    finally:
        signal.alarm(0)
        sys.argv = old_argv
        sys.stdout.flush(), sys.stderr.flush()
        for fd, orig in saved.items():
            os.dup2(orig, fd)
            os.close(orig)
    out = {}
    for fd, fh in files.items():
        fh.seek(0)
        out[fd] = fh.read().decode("utf-8", "replace")
        fh.close()
    return {"code": code, "stdout": out[1], "stderr": out[2]}


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    sys.path.insert(0, os.getcwd())  # as `python -m` (and `python train.py` run in the repository root) have it
    # runpy's note about re-running a module this process imported before is the driver's, not the CLI's.
    warnings.filterwarnings("ignore", message=".*found in sys.modules", category=RuntimeWarning)
    signal.signal(signal.SIGALRM, _alarm)
    results = [run_case(c["entry"], c["argv"]) for c in cases]
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
