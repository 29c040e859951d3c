"""``litesr train``: run a BasicSR-style YAML recipe (also under ``torchrun -m litesr train``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..train.config import load_config
from .options import add_command, add_device, add_quiet, add_threads, positive_int, prepare_runtime


def command_train(args: argparse.Namespace) -> int:
    from ..train.trainer import Trainer  # late: training pulls in the data stack

    prepare_runtime(args)  # a missing GPU is one error now; the trainer picks each rank's GPU itself
    overrides = list(args.set or ())
    if args.time_budget is not None:
        overrides.append(f"train.time_budget={args.time_budget}")
    config, notes = load_config(args.config, overrides=overrides, strict=args.strict)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    resume: bool | Path = Path(args.resume) if args.resume not in (None, "auto") else args.resume == "auto"
    trainer = Trainer(config, resume=resume, device=args.device, progress=not args.quiet)
    if trainer.dist.is_main and not args.quiet:
        start = f"resuming at iteration {trainer.iteration}" if trainer.iteration else "starting"
        budget = config.train.time_budget
        length = (f"{config.train.total_iter} iterations" if not budget or trainer.iteration
                  else f"as many iterations as fit {budget:g} s")
        print(f"{config.name}: {trainer.spec.describe()} on {trainer.device}, {start}, "
              f"{length} → {trainer.folder}", file=sys.stderr)
    exported = trainer.run(stop_at=args.stop_at)
    if exported is not None and not args.quiet:
        print(f"final weights: {exported}", file=sys.stderr)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "train", command_train, help="train a model from a BasicSR-style YAML recipe")
    parser.add_argument("config", metavar="CONFIG.yml")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="STATE",
                        help="continue from the newest training state (or from STATE)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.total_iter=1000 (repeatable)")
    add_device(parser)
    add_threads(parser)
    parser.add_argument("--strict", action="store_true", help="unknown config keys are errors, not warnings")
    parser.add_argument("--stop-at", type=positive_int, metavar="ITER",
                        help="end this session at ITER (state saved; resume later with --resume)")
    parser.add_argument("--time-budget", metavar="DURATION",
                        help="fit the run to a wall-clock budget, e.g. 8m or 1.5h: total_iter is set from the "
                             "measured speed and the schedule stretched to it (same as train.time_budget)")
    add_quiet(parser)
