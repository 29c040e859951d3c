"""The ``litesr`` command: a thin shell over the Python API.

Every sub-command maps to a few library calls; errors the library raises on purpose
(:class:`LiteSRError`) are printed as one ``error: …`` line with exit status 1, usage errors
exit with 2, and Ctrl-C with 130 — never a traceback for a user's mistake.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__, load
from .errors import LiteSRError
from .zoo import ZOO


def _format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def command_info(args: argparse.Namespace) -> int:
    model = load(args.weights, scale=args.scale)
    net = model.net
    print(f"file:         {args.weights}")
    print(f"architecture: {model.arch} ({'deploy' if net.deployed else 'training'} form)")
    for key, value in model.spec.kwargs.items():
        print(f"  {key}: {value}")
    print(f"scale:        {', '.join(f'×{s}' for s in model.scales)}")
    print(f"parameters:   {model.num_params():,}")
    return 0


def command_models(args: argparse.Namespace) -> int:
    rows = []
    for name, card in ZOO.items():
        installed = card.installed()
        if args.installed and not installed:
            continue
        scales = card.spec.build().scales
        psnr = f"{card.set5_psnr:.2f}" if card.set5_psnr is not None else "—"
        rows.append([name, card.spec.arch, "/".join(f"×{s}" for s in scales), psnr,
                     "yes" if installed else "no", card.license])
    print(_format_table(["model", "arch", "scale", "Set5 PSNR-Y", "installed", "licence"], rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litesr", description="Lightweight single-image super-resolution.")
    parser.add_argument("--version", action="version", version=f"litesr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="detect and describe the model in a weights file")
    info.add_argument("weights", metavar="FILE", help="a .pth/.pt/.ckpt/.safetensors file, or a zoo name")
    info.add_argument("--scale", type=int, help="scale, for the rare checkpoint whose weights do not fix it")
    info.set_defaults(handler=command_info)

    models = commands.add_parser("models", help="list the model zoo")
    models.add_argument("--installed", action="store_true", help="only models whose weights are present")
    models.set_defaults(handler=command_models)
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
