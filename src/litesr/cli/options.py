"""The options several commands share, declared once so a flag means the same everywhere.

* ``-m/--model`` and ``-w/--weights`` pick the model; ``--scale`` is always the *network*
  scale (multi-scale models, checkpoints whose weights do not fix it). ``-s`` is only ever
  ``--outscale`` (``litesr upscale``, the Real-ESRGAN convention); no command uses it for
  the network scale.
* ``--device`` defaults to ``auto`` in every command and goes through the one resolver,
  :func:`litesr.devices.resolve_device`, so a missing GPU reads the same everywhere.
* ``--precision`` is checked against the device and ``--threads`` applied before any work
  (:func:`prepare_runtime`), so ``--precision fp16`` on a CPU is one error up front, not
  one per image; ``auto`` (the default) is resolved once the model is loaded
  (:func:`resolve_cli_precision`, by measurement: :mod:`litesr.precision`).

:class:`CliParser` is the parser of every command: a misspelled option is reported with the
sub-command's own usage and a "did you mean" suggestion.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import load
from ..devices import AUTO, DEVICE_CHOICES, INT8, PRECISION_CHOICES, check_precision, resolve_device
from ..errors import CheckpointError
from ..inference import Runner
from ..model import SRModel
from ..precision import PrecisionChoice, resolve_precision
from ..zoo import default_model

#: What ``-s`` means in a command that has no ``--outscale``: the user wanted the network scale.
NOT_OUTSCALE_HINT = {"-s": "the network scale is --scale (-s is --outscale, which only `litesr upscale` has)"}
#: Inference engines of ``--backend``.
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
#: A command's function: the parsed arguments in, the exit status out.
Handler = Callable[[argparse.Namespace], int]


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose "unrecognized arguments" error helps the user fix it.

    argparse (3.11) lets a sub-command's parser hand unknown arguments back to the top-level
    parser, which then prints the *top-level* usage without a hint. Here the error comes
    from the sub-command's parser (its usage, its options) with the closest option name, or
    with a command's own ``hints`` for options that mean something else here (``-s``).
    """

    def __init__(self, *args: Any, hints: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hints = dict(hints or {})

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            owner: CliParser = getattr(parsed, "parser", self)
            owner.error(owner.unrecognized_message(extras))
        return parsed

    def unrecognized_message(self, extras: Sequence[str]) -> str:
        """``unrecognized arguments: --tiel 16 (did you mean --tile?)``."""
        known = [option for action in self._actions for option in action.option_strings]
        notes: list[str] = []
        guesses: list[str] = []
        for extra in extras:
            option = extra.split("=", 1)[0]
            if option in self.hints:
                notes.append(self.hints[option])
            elif option.startswith("-") and len(option) > 1:
                guesses += difflib.get_close_matches(option, known, n=1, cutoff=0.6)
        message = f"unrecognized arguments: {' '.join(extras)}"
        if guesses:
            message += f" (did you mean {' or '.join(dict.fromkeys(guesses))}?)"
        return "; ".join([message, *dict.fromkeys(notes)])


def add_command(commands: argparse._SubParsersAction, name: str, handler: Handler, **kwargs: Any) -> CliParser:
    """A sub-command's parser (a :class:`CliParser`: ``kwargs`` may hold its ``hints``).

    ``args.handler`` runs the command; ``args.parser`` lets it report usage errors itself.
    """
    parser: CliParser = commands.add_parser(name, **kwargs)
    parser.set_defaults(handler=handler, parser=parser)
    return parser


# --------------------------------------------------------------------------- value types


def positive_int(text: str) -> int:
    """An argparse type: an integer ≥ 1."""
    return _bounded_int(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer ≥ 0."""
    return _bounded_int(text, 0, "a non-negative integer")


def _bounded_int(text: str, minimum: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
    return value


def size_argument(text: str) -> tuple[int, int]:
    """An argparse type: ``256x256`` (or ``256``) → (height, width)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x×X]\s*(\d+))?\s*", text)
    if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < 1):
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x256, got {text!r}")
    height = int(match.group(1))
    return height, int(match.group(2) or height)


# --------------------------------------------------------------------------- shared options


def add_model_source(parser: argparse.ArgumentParser, *, required: bool = False) -> argparse._MutuallyExclusiveGroup:
    """``-m MODEL | -w FILE``; returns the group so a command can add a third source (add :func:`add_scale` too)."""
    source = parser.add_mutually_exclusive_group(required=required)
    default = "" if required else "; default: the best installed model"
    source.add_argument("-m", "--model", metavar="MODEL",
                        help=f"a zoo name (see `litesr models`) or a weights file{default}")
    source.add_argument("-w", "--weights", metavar="FILE", help="a weights file (.pth/.pt/.ckpt/.safetensors)")
    return source


def add_scale(parser: argparse.ArgumentParser) -> None:
    """``--scale``: the network's factor, the same in every command."""
    parser.add_argument("--scale", type=positive_int, metavar="S",
                        help="network scale, for multi-scale models and checkpoints whose weights do not fix it "
                             "(default: the model's); never -s, which is upscale's --outscale")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar="|".join(DEVICE_CHOICES),
                        help="auto (default: CUDA when PyTorch sees a GPU, else the CPU), cpu, cuda or cuda:N")


def add_precision(parser: argparse.ArgumentParser, *, int8: bool = True, default: str = AUTO,
                  why_default: str = "") -> None:
    choices = [name for name in PRECISION_CHOICES if int8 or name != "int8"]
    parser.add_argument("--precision", choices=choices, default=default,
                        help=f"numeric precision (default {default}{why_default}): auto (bf16/fp16 only where it "
                             "measures faster than fp32 on this machine, see `litesr info --system`), fp32, "
                             "bf16, fp16 (CUDA)" + (", int8 (ONNX Runtime, CPU)" if int8 else ""))


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="CPU threads for PyTorch and ONNX Runtime (default: PyTorch's choice)")


def add_backend(parser: argparse.ArgumentParser) -> None:
    # None until prepare_runtime: int8 takes over an unspecified backend but refuses an explicit torch.
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="inference engine: torch (default) or onnxruntime (pip install 'litesr[onnx]'; "
                             "the default with --precision int8)")


def add_calibration(parser: argparse.ArgumentParser) -> None:
    """``--calibration``: the training images int8 activation ranges are measured on."""
    from ..quantize import DEFAULT_CALIBRATION

    parser.add_argument("--calibration", metavar="DIR|SET",
                        help=f"training images to calibrate int8 on: a folder or a set name looked up like --data "
                             f"(default {DEFAULT_CALIBRATION}); benchmark sets are refused")


def add_compile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the deploy form: faster for SPAN, each new input size compiles first")


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary on stderr")


# --------------------------------------------------------------------------- resolving them


def prepare_runtime(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads``, resolve ``--device`` and check ``--precision`` against it.

    Called first by each command that runs a network, so a device or precision this machine
    cannot provide is one error before any file is read. Options a command does not declare
    are simply absent from ``args``.
    """
    if hasattr(args, "backend"):
        int8 = getattr(args, "precision", None) == INT8
        if args.backend is None:
            args.backend = "onnxruntime" if int8 else "torch"
        elif int8 and args.backend == "torch":
            args.parser.error("--precision int8 runs on ONNX Runtime: use --backend onnxruntime (or leave it out)")
    if getattr(args, "compile", False) and getattr(args, "backend", "torch") != "torch":
        args.parser.error("--compile applies to --backend torch")
    threads = getattr(args, "threads", None)
    if threads is not None:
        torch.set_num_threads(threads)
    device = resolve_device(getattr(args, "device", "auto"))
    precision = getattr(args, "precision", None)
    if precision is not None and precision != AUTO:
        check_precision(precision, device)
    return device


def resolve_cli_precision(args: argparse.Namespace, runner: Runner, scale: int) -> PrecisionChoice:
    """Replace ``args.precision`` (``auto`` included) by what will run, and say so once.

    A slow explicit choice (bf16 emulated on this CPU) is one ``warning:`` line on stderr
    before any work, with the measured slowdown.
    """
    choice = resolve_precision(args.precision, runner, scale)
    if choice.warning:
        print(f"warning: {choice.warning}", file=sys.stderr)
    args.precision = choice.precision
    return choice


def load_cli_model(args: argparse.Namespace, device: torch.device | None = None) -> tuple[SRModel, str]:
    """The model named by ``-m``/``-w`` (or the default one) on ``device``, and how to name it.

    ``-w`` is always a file: checked here, since :func:`litesr.load` would look a missing
    extension-less path up in the zoo and report an unknown *model*.
    """
    device = device or torch.device("cpu")
    if args.weights:
        path = Path(args.weights)
        if not path.exists():
            raise CheckpointError(f"{path}: no such file")
        if path.is_dir():
            raise CheckpointError(f"{path}: is a folder, not a weights file")
        if path.suffix.lower() == ".onnx":
            raise CheckpointError(f"{path}: an ONNX model runs only with `litesr upscale --backend onnxruntime`")
        return load(path, device=device, scale=args.scale), str(path)
    if args.model:
        model = load(args.model, device=device, scale=args.scale)
        return model, model.name or str(args.model)
    card = default_model()
    model = load(card.name, device=device, scale=args.scale)
    return model, f"{card.name} (default)"
