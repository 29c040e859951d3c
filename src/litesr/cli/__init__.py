"""The ``litesr`` command: a thin shell over the Python API.

Each sub-command lives in its own module exposing ``register(subparsers)``. Errors the
library raises on purpose (:class:`LiteSRError`) are printed as one ``error: …`` line with
exit status 1, usage errors exit with 2, and Ctrl-C with 130 — never a traceback for a
user's mistake.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import LiteSRError
from . import evaluate, export, info, profile, train, upscale

SUBCOMMANDS = (upscale, info, evaluate, train, profile, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litesr", description="Lightweight single-image super-resolution.")
    parser.add_argument("--version", action="version", version=f"litesr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except LiteSRError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
