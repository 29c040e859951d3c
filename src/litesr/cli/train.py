"""``litesr train``: run a BasicSR-style YAML recipe (also under ``torchrun -m litesr train``).

``litesr train RECIPE.yml`` (or BasicSR's ``-opt RECIPE.yml``) starts a run;
``litesr train --resume experiments/NAME`` continues one *as it was configured*: from the
experiment's own resolved ``config.yml`` (with a time budget's fitted length), not from
the recipe, so nothing given with ``--set`` the first time needs repeating.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..errors import LiteSRError
from ..train.budget import process_age
from ..train.config import load_config
from ..train.experiment import ResumePlan, plan_resume
from ..train.options import TrainConfig
from .options import add_command, add_device, add_quiet, add_threads, positive_int, prepare_runtime


def add_option_file(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``CONFIG.yml`` or BasicSR's ``-opt CONFIG.yml``, plus ``--set`` and ``--strict``."""
    parser.add_argument("config", nargs="?", metavar="CONFIG.yml", help="the option file")
    parser.add_argument("-opt", "--opt", dest="opt", metavar="CONFIG.yml",
                        help="the option file, BasicSR style (same as CONFIG.yml)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.total_iter=1000 (repeatable)")
    parser.add_argument("--strict", action="store_true",
                        help="every config warning is an error (all of them are reported at once)")
    parser.set_defaults(option_file_required=required)


def option_file(args: argparse.Namespace) -> str | None:
    """The option file given either way; a usage error when both or (if required) neither."""
    if args.config is not None and args.opt is not None:
        args.parser.error("give the option file once: CONFIG.yml or -opt CONFIG.yml")
    path = args.config if args.config is not None else args.opt
    if path is None and args.option_file_required:
        args.parser.error("the option file is required: CONFIG.yml or -opt CONFIG.yml")
    return path


def read_option_file(args: argparse.Namespace, path: str | Path, extra: list[str] | None = None) -> TrainConfig:
    """Load ``path`` with ``--set`` overrides (plus ``extra``); warnings go to stderr, once each."""
    config, notes = load_config(path, overrides=[*(args.set or ()), *(extra or ())], strict=args.strict)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return config


def command_train(args: argparse.Namespace) -> int:
    """Under torchrun every rank meets the same error: rank 0 alone says it (the others exit with 1)."""
    try:
        return _train(args)
    except LiteSRError:
        if os.environ.get("RANK", "0") != "0":
            raise SystemExit(1) from None
        raise


def _train(args: argparse.Namespace) -> int:
    from ..train.trainer import Trainer  # late: training pulls in the data stack

    prepare_runtime(args)  # a missing GPU is one error now; the trainer picks each rank's GPU itself
    recipe, resume = option_file(args), args.resume
    if recipe is None and resume is not None and Path(resume).suffix.lower() in (".yml", ".yaml"):
        recipe, resume = resume, "auto"  # `--resume recipe.yml`: argparse gave the recipe to --resume
    if recipe is None and resume in (None, "auto"):
        args.parser.error("give the option file (CONFIG.yml or -opt CONFIG.yml), or --resume EXPERIMENT_DIR")
    extra = [] if args.time_budget is None else [f"train.time_budget={args.time_budget}"]
    plan: ResumePlan = plan_resume(resume, recipe, lambda path: read_option_file(args, path, extra))
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    trainer = Trainer(plan.config, resume=plan.resume, device=args.device, progress=not args.quiet,
                      started=time.monotonic() - process_age())  # a time budget counts from the command's start
    exported = trainer.run(stop_at=args.stop_at)
    if exported is not None and not args.quiet and trainer.dist.is_main:
        print(f"final weights: {exported}", file=sys.stderr)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "train", command_train, help="train a model from a BasicSR-style YAML recipe")
    add_option_file(parser, required=False)
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="EXPERIMENT|STATE",
                        help="continue a run as it was configured (its experiments/<name>/config.yml): from "
                             "the newest state of the recipe's experiment, of EXPERIMENT, or from STATE")
    add_device(parser)
    add_threads(parser)
    parser.add_argument("--stop-at", type=positive_int, metavar="ITER",
                        help="end this session at ITER (state saved; resume later with --resume)")
    parser.add_argument("--time-budget", metavar="DURATION",
                        help="fit the run to a wall-clock budget counted from the start of the command, e.g. "
                             "8m or 1.5h: total_iter is re-fitted from the measured speed as the run goes and "
                             "the schedule stretched to it (same as train.time_budget)")
    add_quiet(parser)
