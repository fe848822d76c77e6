"""How ``gdl-ref`` and its subcommands (train, sample, evaluate, bench, cards) end on an error.

Exit status and stderr:

* 0: done (a command may define 1 as its "problems found" result, e.g. ``gdl-ref cards check``);
* 2, a usage error: an unknown option, a bad value for an argument, a missing argument. One line,
  ``PROG: error: MESSAGE``, naming the argument (argparse's own errors and ``UsageError``);
* 1, any other error: a file that is missing or malformed, a corrupt checkpoint, a refused run
  (``Failure``, raised by ``fail``), and any unexpected exception. One line naming the file, and its
  line where known (``PROG: error: FILE[:LINE]: MESSAGE``);
* 130: interrupted (Ctrl-C).

With the environment variable ``GDL_REF_DEBUG=1`` an error raised by a command prints its full
traceback before that line (the exit status stays the same).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, NoReturn

__all__ = ["DEBUG", "ArgumentParser", "Failure", "UsageError", "fail", "guard", "guarded", "run_main"]

DEBUG = "GDL_REF_DEBUG"  # the environment variable: "1" prints tracebacks
USAGE, FAILED, INTERRUPTED = 2, 1, 130


class UsageError(Exception):
    """A mistake in the command line (exit status 2); the message names the argument."""


class Failure(Exception):
    """An error that is not the command line's (exit status 1); the message names the file (and line)."""


def fail(message: str) -> NoReturn:
    """Stop the command with exit status 1 and ``message`` (which names the file) on stderr."""
    raise Failure(message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _debug() -> bool:
    return os.environ.get(DEBUG, "") not in ("", "0")


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr, ``PROG: error: MESSAGE``, and exit 2.

    Subparsers made by ``add_subparsers`` are of this class too (argparse's default ``parser_class``).
    """

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {_one_line(message)}", file=sys.stderr)
        sys.exit(USAGE)


def guard(prog: str, func: Callable[..., int], *args: Any) -> int:
    """``func(*args)`` as an exit status: its return value, or 2 / 1 / 130 with one line on stderr.

    ``UsageError`` gives 2, ``Failure`` and any other ``Exception`` give 1 (an unexpected one says so
    and how to see its traceback), ``KeyboardInterrupt`` gives 130. Under ``GDL_REF_DEBUG=1`` the
    traceback is printed first.
    """
    try:
        return int(func(*args))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as err:  # noqa: BLE001 -- every error ends as one line and an exit status
        if _debug():
            traceback.print_exc()
        if isinstance(err, (UsageError, Failure)):
            print(f"{prog}: error: {_one_line(str(err))}", file=sys.stderr)
            return USAGE if isinstance(err, UsageError) else FAILED
        hint = "" if _debug() else f" (set {DEBUG}=1 for the traceback)"
        print(f"{prog}: internal error: {type(err).__name__}: {_one_line(str(err))}{hint}", file=sys.stderr)
        return FAILED


def guarded(prog: str | Callable[[argparse.Namespace], str]) -> Callable[[Callable[[argparse.Namespace], int]],
                                                                         Callable[[argparse.Namespace], int]]:
    """Decorate a subcommand's handler so that calling it returns ``guard``'s exit status.

    ``prog`` is the name the error line starts with, or a function of the parsed arguments giving it.
    """
    def decorate(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @wraps(handler)
        def run(args: argparse.Namespace) -> int:
            return guard(prog(args) if callable(prog) else prog, handler, args)
        return run
    return decorate


def _chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subparser that ``args`` was parsed by (``parser`` itself without subcommands)."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, sub.dest, None) if sub is not None and sub.dest != argparse.SUPPRESS else None
        if sub is None or name not in sub.choices:
            return parser
        parser = sub.choices[name]


def run_main(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen handler ``args.func(args)``; return the exit status.

    Options that no parser knows are a usage error of the innermost subcommand, listing its documented options.
    ``--help`` returns 0.
    """
    try:
        args, extra = parser.parse_known_args(argv)
        command = _chosen(parser, args)
        if extra:
            valid = sorted({o for a in command._actions if a.help != argparse.SUPPRESS
                            for o in a.option_strings if o.startswith("--")})
            command.error(f"unrecognized arguments: {' '.join(extra)}; valid options: {', '.join(valid)}")
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0)
    return guard(command.prog, args.func, args)
