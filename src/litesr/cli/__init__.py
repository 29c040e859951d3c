"""The ``litesr`` command: a thin shell over the Python API.

Each sub-command lives in its own module exposing ``register(subparsers)``; the options
they share are declared once in :mod:`.options`. The error contract:

* usage errors (a misspelled option, a missing argument) print the sub-command's usage and
  exit with 2;
* errors the library raises on purpose (:class:`LiteSRError`: a bad file, an unknown model,
  a device this machine lacks) print one ``error: …`` line and exit with 1;
* an OS error (a full disk, a permission) is one ``error:`` line too, exit 1;
* anything else is a bug: one ``error: internal error: …`` line asking for a report, exit 1,
  the traceback only with ``LITESR_DEBUG=1``;
* Ctrl-C exits with 130 and SIGTERM (``kill``, a job scheduler's stop) with 143: SIGTERM is
  raised as a :class:`KeyboardInterrupt` too, so every cleanup runs (an atomic write removes
  its temp file) instead of the process dying mid-write.

Never a traceback for a user's mistake.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from .. import __version__
from ..errors import LiteSRError
from ..imaging.atomic import os_error_reason
from . import evaluate, export, info, profile, serve, test, train, upscale
from .options import CliParser, Handler

SUBCOMMANDS = (upscale, info, evaluate, train, test, profile, export, serve)
#: Set to 1 to see the traceback of unexpected errors (for bug reports).
DEBUG_VARIABLE = "LITESR_DEBUG"
#: The shell's 128 + signal number, so scripts see how the run ended.
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM
EXIT_STATUS_HELP = (f"Exit status: 0 success; 1 an error (each printed as one 'error:' line); 2 a usage error; "
                    f"{EXIT_INTERRUPTED} interrupted by Ctrl-C; {EXIT_TERMINATED} terminated by SIGTERM. "
                    "An interrupted or terminated run leaves no partial output file.")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same cleanup runs; the CLI exits with 143."""


def build_parser() -> CliParser:
    parser = CliParser(prog="litesr", description="Lightweight single-image super-resolution.",
                       epilog=EXIT_STATUS_HELP)
    parser.add_argument("--version", action="version", version=f"litesr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CliParser)
    for module in SUBCOMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (argparse exits with 2 on usage errors)."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        with _sigterm_as_interrupt():
            return handler(args)
    except LiteSRError as error:
        return _fail(str(error))
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except BrokenPipeError:  # `litesr models | head -1`: the reader left; nothing more to say
        _silence_stdout()
        return 1
    except OSError as error:
        _print_traceback_when_debugging()
        where = f"{error.filename}: " if error.filename else ""
        return _fail(f"{where}{os_error_reason(error)}")
    except Exception as error:  # the last resort: a bug, reported as such without a traceback
        _print_traceback_when_debugging()
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return _fail(f"internal error: {type(error).__name__}: {text}\n"
                     f"This is a bug in LiteSR {__version__}; please report it with the output of the same "
                     f"command run with {DEBUG_VARIABLE}=1.")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs, then restore the previous handler.

    ``main`` is also called in-process (tests, embedding programs), which must get their
    own handler back. Signal handlers can only be set from the main thread; elsewhere
    SIGTERM keeps whatever meaning it has.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _print_traceback_when_debugging() -> None:
    if os.environ.get(DEBUG_VARIABLE) == "1":
        traceback.print_exc(file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit-time flush does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests)
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
