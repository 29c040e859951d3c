"""``litesr test -opt FILE.yml``: BasicSR's ``basicsr/test.py``, with LiteSR's exact metrics.

Examples::

    litesr test -opt ../shared/options/scnet/test_SCNet-T-x4-PS.yml \\
        --set path.pretrain_network_g=src/litesr/weights/scnet-t-x4.safetensors \\
        --set datasets.test_1.dataroot_gt=../shared/data/benchmark/Set5/HR ...

The network comes from ``network_g`` and the weights from ``path.pretrain_network_g``;
every dataset of the file is scored with its ``val.metrics`` by the code behind
``litesr eval`` (same numbers). The table goes to stdout and to
``results/<name>/test_<name>.log``; one line per set to stderr as it finishes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..imaging.atomic import atomic_write
from ..train.scoring import SetScores
from .options import add_command, add_device, add_quiet, add_threads, prepare_runtime
from .table import format_table
from .train import add_option_file, option_file, read_option_file


def command_test(args: argparse.Namespace) -> int:
    from ..train.tester import run_test  # late: pulls in the data stack

    device = prepare_runtime(args)
    path = option_file(args)
    assert path is not None  # required=True: option_file reported the usage error
    config = read_option_file(args, path)
    root = Path(args.results) if args.results else Path("results") / config.name
    report = (lambda scores: None) if args.quiet else (lambda scores: print(set_line(scores), file=sys.stderr))
    run = run_test(config, device=device, results_root=root, progress=not args.quiet, report=report)
    for note in run.notes:
        print(f"warning: {note}", file=sys.stderr)
    table = scores_table(run.scores)
    print(table)
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"test_{config.name}.log"
    text = f"{config.name}: {run.model.spec.describe()}, weights {config.path.pretrain_network_g}\n{table}\n"
    atomic_write(log, lambda handle: handle.write(text.encode("utf-8")))
    if not args.quiet:
        print(f"results: {log}", file=sys.stderr)
    return 0


def set_line(scores: SetScores) -> str:
    """``Set5 ×4 (5 images): psnr 31.2030, ssim 0.8824`` (BasicSR prints 4 decimals)."""
    values = ", ".join(f"{name} {value:.4f}" for name, value in scores.values.items())
    return f"{scores.set_name} ×{scores.scale} ({scores.images} images): {values}"


def scores_table(scores: list[SetScores]) -> str:
    """A Markdown table, one row per set and one column per metric of the file."""
    names = list(dict.fromkeys(name for result in scores for name in result.values))
    rows = [[result.set_name, f"×{result.scale}", result.images,
             *(f"{result.values[name]:.4f}" if name in result.values else "" for name in names)]
            for result in scores]
    return format_table(["Set", "Scale", "Images", *names], rows, markdown=True)


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "test", command_test,
                         help="score weights on the datasets of a BasicSR test option file (basicsr/test.py)")
    add_option_file(parser, required=True)
    parser.add_argument("--results", metavar="DIR",
                        help="where the log and saved images go (default: results/<name>)")
    add_device(parser)
    add_threads(parser)
    add_quiet(parser)
