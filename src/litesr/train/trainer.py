"""The training loop: iteration-based, crash-safe, the same code on one process or under torchrun.

One :class:`Trainer` owns a run: it builds the network, data, optimiser, schedule, loss and
EMA from a :class:`TrainConfig`, resumes from the newest training state when asked, and
then steps until ``total_iter`` (or fits ``total_iter`` to ``time_budget``, see
:mod:`.budget`) — validating every ``val_freq`` iterations, saving a state
every ``save_checkpoint_freq`` (atomically) and exporting the final weights as safetensors.
Only rank 0 logs, validates and saves.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..archs import SRNet
from ..checkpoints import save_safetensors
from ..data.benchmark import BenchmarkSet
from ..data.dataset import SRTrainDataset
from ..data.image_store import TrainingImages
from ..data.loader import build_train_loader, cycle
from ..errors import LiteSRError
from ..model import SRModel
from ..tracing import count_parameters
from ..devices import AUTO
from ..precision import PrecisionChoice, choose_training_precision
from .budget import TimeBudget
from .console import RunConsole, format_duration
from .distributed import DistContext, barrier, device_for, init_distributed, mean_across_ranks, shutdown
from .ema import ModelEMA
from .eval_sets import open_eval_set
from .experiment import CONFIG_NAME
from .init import apply_weight_init
from .logbook import Logbook
from .losses import build_pixel_loss
from .optim import build_optimizer, build_scheduler, cosine_restarts, multistep, with_warmup
from .options import DatasetOptions, TrainConfig
from .pretrained import load_pretrained
from .scoring import DEFAULT_METRICS, SetScores, score_set
from .state import list_states, load_state, remove_interrupted_saves, restore_rng_states, save_state

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: torch's DataLoader warns (twice, with a source line) when workers outnumber CPUs; the start summary says it once.
_WORKER_WARNING = "This DataLoader will create"


class TrainingError(LiteSRError):
    """The run cannot start or continue (bad resume state, no training set, …)."""


class Trainer:
    """Train the network a :class:`TrainConfig` describes.

    ``resume``: ``True`` continues from the newest state in the experiment folder (a fresh
    start if there is none), a path continues from that state file, ``False`` starts over
    (refusing to overwrite a folder that already holds states). ``started`` is the
    :func:`time.monotonic` time the run's clock started (a time budget counts from it;
    default: now). Every dataset is opened and checked here, before any iteration.
    """

    def __init__(self, config: TrainConfig, *, resume: bool | Path = False, device: str = "auto",
                 progress: bool = True, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self._save_seconds = 0.0  # how long the last state save took (the budget reserves for it)
        if config.train is None or config.train_set is None:
            raise TrainingError(f"{config.source or config.name}: the config has no train section or no "
                                "datasets.train: nothing to train (to score weights with a test file, use "
                                "litesr test -opt FILE.yml)")
        self.config = config
        self.options = config.train
        self.dist: DistContext = init_distributed(torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                                                               else "cpu" if device == "auto" else device))
        if self.options.time_budget and self.dist.enabled:
            raise TrainingError("train.time_budget is for single-process runs: under torchrun the ranks would "
                                "disagree on when to stop; set train.total_iter instead")
        self.device = device_for(self.dist, device)
        self.folder = Path(config.experiment_dir)
        self.console = RunConsole(progress and self.dist.is_main)
        self.show_bar = progress and self.dist.is_main and sys.stderr.isatty()
        self.spec = config.network_g.to_spec()
        self.notes: list[str] = []
        seed = config.manual_seed if config.manual_seed is not None else 0
        torch.manual_seed(seed + self.dist.rank)

        self.eval_sets = self._open_eval_sets()  # cheap and often wrong: checked before the training data
        self.net: SRNet = self._build_network().to(self.device)
        if self.options.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.precision = self._choose_precision()
        self.ema = ModelEMA(self.net, self.options.ema_decay) if self.options.ema_decay > 0 else None
        self.optimizer = build_optimizer(self.options.optim_g.type, [p for p in self.net.parameters() if p.requires_grad],
                                         self.options.optim_g.lr, self.options.optim_g.weight_decay,
                                         self.options.optim_g.betas)
        self.scheduler = build_scheduler(self.optimizer, self._schedule())
        loss = self.options.pixel_opt
        self.loss = build_pixel_loss(loss.type, loss.loss_weight, loss.reduction, loss.eps)
        self.train_module: torch.nn.Module = self.net
        if self.dist.enabled:
            self.train_module = DistributedDataParallel(self.net, find_unused_parameters=len(self.net.scales) > 1)
        if self.options.compile:
            self.train_module = torch.compile(self.train_module)
        self.iteration = 0
        self.best: dict[str, Any] = {}
        self.budget_state: dict[str, Any] = {}
        self._resume(resume)
        self.start_iteration = self.iteration
        self.loader = self._build_loader(config.train_set, seed)

    # ------------------------------------------------------------------ set-up

    def _choose_precision(self) -> PrecisionChoice:
        """``precision: auto`` measured once (rank 0's choice binds every rank: they must agree)."""
        train_set = self.config.train_set
        assert train_set is not None
        scale = max(train_set.scales)
        batch = (min(train_set.batch_size_per_gpu, 4), max((train_set.gt_size or 96) // scale, 8))
        choice = None
        if self.dist.is_main or self.options.precision != AUTO:
            choice = choose_training_precision(self.options.precision, self.net, scale, self.device, batch)
        if self.dist.enabled and self.options.precision == AUTO:  # an explicit precision is the same everywhere
            shared = [choice]
            torch.distributed.broadcast_object_list(shared, src=0)
            choice = shared[0]
        assert choice is not None
        if choice.warning and self.dist.is_main:
            print(f"warning: {choice.warning}", file=sys.stderr)
        return choice

    def _open_eval_sets(self) -> list[BenchmarkSet]:
        """Every validation set at each of its scales, read once now: a wrong path fails at start-up."""
        if not self.dist.is_main or self.config.val is None or not self.config.val.val_freq:
            return []
        return [open_eval_set(options, scale, check=True) for options in self.config.val_sets
                for scale in options.scales]

    def _build_network(self) -> SRNet:
        net = self.spec.build()
        paths = self.config.path
        if paths.pretrain_network_g:
            self.notes += load_pretrained(net, self.spec, paths.pretrain_network_g, param_key=paths.param_key_g,
                                          strict=paths.strict_load_g)
            return net.train()
        return apply_weight_init(net, self.options.weight_init).train()

    def _schedule(self):
        scheduler = self.options.scheduler
        base_lr = self.options.optim_g.lr
        if scheduler is None:
            schedule = lambda it: 1.0  # noqa: E731
        elif scheduler.type == "MultiStepLR":
            schedule = multistep(scheduler.milestones, scheduler.gamma)
        else:
            schedule = cosine_restarts(scheduler.periods, scheduler.restart_weights, scheduler.eta_min / base_lr)
        return with_warmup(schedule, self.options.warmup_iter)

    def _build_loader(self, options: DatasetOptions, seed: int) -> torch.utils.data.DataLoader:
        images = TrainingImages(list(options.dataroot_gt), dataroot_lq=options.dataroot_lq and list(options.dataroot_lq),
                                scales=options.scales, filename_tmpl=options.filename_tmpl,
                                io_backend=options.io_backend, progress=self.show_bar, name=options.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # skipped images: listed in the start summary instead
            self.dataset = SRTrainDataset(images, scales=options.scales, gt_size=options.gt_size,
                                          use_hflip=options.use_hflip, use_rot=options.use_rot,
                                          dataset_enlarge_ratio=options.dataset_enlarge_ratio, seed=seed,
                                          small_images="skip")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_WORKER_WARNING)
            return build_train_loader(self.dataset, options.batch_size_per_gpu, options.num_worker_per_gpu,
                                      scales=options.scales, seed=seed, rank=self.dist.rank,
                                      world_size=self.dist.world_size, shuffle=options.use_shuffle,
                                      pin_memory=options.pin_memory)

    # ------------------------------------------------------------------ resume

    def _resume(self, resume: bool | Path) -> None:
        states_dir = self.folder / "training_states"
        if self.dist.is_main:
            removed = remove_interrupted_saves(states_dir)
            if removed:
                self.notes.append(f"removed {len(removed)} temp file(s) of interrupted saves in {states_dir}")
        explicit = self.config.path.resume_state
        if isinstance(resume, Path) or explicit:
            path = Path(resume if isinstance(resume, Path) else explicit)
        elif resume:
            existing = list_states(states_dir)
            if not existing:
                return
            path = existing[-1]
        else:
            if list_states(states_dir):
                raise TrainingError(f"{states_dir} already holds training states: pass --resume to continue, "
                                    "or choose another experiment name")
            return
        if not path.is_file():
            raise TrainingError(f"{path}: no such training state")
        state = load_state(path)
        self.net.load_state_dict(state["net"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = int(state["iteration"])
        self.best = dict(state.get("best", {}))
        self.budget_state = dict(state.get("budget", {}))
        restore_rng_states(state["rng"])
        if self.iteration > self.options.total_iter:
            raise TrainingError(f"{path} is at iteration {self.iteration}, past this config's total_iter "
                                f"({self.options.total_iter}): resume with the experiment's own {CONFIG_NAME}")

    def _fit_to(self, total: int) -> None:
        """Make the run ``total`` iterations long, stretching the schedule's shape to it.

        Called by a time-budgeted run; warm-up keeps its length (it is about the first
        steps' stability, not the run's length). The experiment's ``config.yml`` is
        rewritten, so resuming continues the same schedule.
        """
        factor = total / self.options.total_iter
        scheduler = self.options.scheduler.stretched(factor) if self.options.scheduler else None
        self.options = replace(self.options, total_iter=total, scheduler=scheduler)
        self.config = replace(self.config, train=self.options)
        self.scheduler.lr_lambdas = [self._schedule()]
        self._write_config()

    def _write_config(self) -> None:
        if self.dist.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / CONFIG_NAME).write_text(self.config.to_yaml())

    def _save_state(self, budget: TimeBudget | None) -> Path | None:
        if not self.dist.is_main:
            return None
        payload = {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                   "scheduler": self.scheduler.state_dict(), "best": self.best}
        if self.ema is not None:
            payload["ema"] = self.ema.state_dict()
        if budget is not None:
            payload["budget"] = {"spent": budget.elapsed(), "fitted": budget.fitted}
        return save_state(self.folder / "training_states", self.iteration, payload)

    # ------------------------------------------------------------------ the loop

    def _batches(self) -> Iterator[dict[str, Any]]:
        """Batches from where the run stands: the resumed epoch, minus the batches already used."""
        per_epoch = len(self.loader)
        epoch, done = divmod(self.iteration, per_epoch)
        batches = cycle(self.loader, start_epoch=epoch)
        for _ in range(done):
            next(batches)
        return batches

    def step(self, batch: dict[str, Any]) -> float:
        lq = batch["lq"].to(self.device, non_blocking=True)
        gt = batch["gt"].to(self.device, non_blocking=True)
        if self.options.channels_last:
            lq, gt = lq.contiguous(memory_format=torch.channels_last), gt.contiguous(memory_format=torch.channels_last)
        dtype = AUTOCAST_DTYPES.get(self.precision.precision)
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            output = self.train_module(lq, int(batch["scale"]))
        loss = self.loss(output.float(), gt)
        if not torch.isfinite(loss):
            raise TrainingError(f"iteration {self.iteration + 1}: the loss is {loss.item()} (diverged); "
                                "lower the learning rate or use precision fp32")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.options.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.options.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.net)
        return loss.detach()

    def _make_budget(self) -> TimeBudget | None:
        if not self.options.time_budget:
            return None
        spent = time.monotonic() - self.started + float(self.budget_state.get("spent", 0.0))
        return TimeBudget(self.options.time_budget, spent=spent, fitted=bool(self.budget_state.get("fitted")))

    def run(self, stop_at: int | None = None) -> Path | None:
        """Train to ``total_iter`` and export the final weights; returns their path on rank 0.

        ``stop_at`` ends the session early at that iteration (saving a state, exporting
        nothing), so a long run can be split across sessions with the schedule unchanged.
        With ``train.time_budget`` the run re-fits ``total_iter`` to its measured speed as it
        goes (a resumed run too, with the time its earlier sessions used); it stops at the
        deadline in any case, validates, saves a state and exports the weights it has reached.
        """
        total = self.options.total_iter
        end = min(total, stop_at) if stop_at is not None else total
        logbook = Logbook(self.folder, self.config.logger.use_tb_logger) if self.dist.is_main else None
        if logbook:
            logbook.rewind(self.iteration)
            self.notes += logbook.notes
        self._write_config()
        budget = self._make_budget()
        self.console.start(*self._start_summary(budget, stop_at))
        out_of_time = False
        bar = tqdm(total=total, initial=self.iteration, disable=not self.show_bar, unit="it", dynamic_ncols=True,
                   leave=False)
        window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_WORKER_WARNING)
                batches = self._batches()
                while self.iteration < end:
                    loss = self.step(next(batches))
                    self.iteration += 1
                    bar.update(1)
                    window_loss += float(loss)
                    window_steps += 1
                    if self._report_due(total):
                        mean_loss = float(mean_across_ranks(torch.tensor(window_loss / window_steps), self.dist))
                        rate = window_steps / (time.perf_counter() - window_start)
                        self._report_progress(logbook, total, mean_loss, rate, budget)
                        window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
                    if self._due(self.config.logger.save_checkpoint_freq, total):
                        self._timed_save(budget)  # before validating: a validation failure loses nothing
                    if self._due(self.config.val.val_freq if self.config.val else None, total):
                        self._timed_validate(logbook, budget)
                    if budget is not None:
                        total, end = self._follow_budget(budget, total, stop_at)
                        bar.total = total
                        if budget.expired() and self.iteration < end:
                            out_of_time = True
                            self.console.event(self.iteration, f"time budget spent after "
                                               f"{format_duration(budget.elapsed())}: stopping before {total}")
                            break
            if self.iteration < total:
                self._save_state(budget)  # first: the validation below cannot lose it
            if out_of_time:
                self._validate(logbook)
        finally:
            bar.close()
            if logbook:
                logbook.close()
        if self.iteration < total:
            if not out_of_time:
                self.console.line(f"stopped at iteration {self.iteration} of {total} (--stop-at): state saved; "
                                  f"continue with: litesr train --resume {self.folder}")
                shutdown(self.dist)
                return None
        exported = self.export(self.folder / "models" / f"{self.config.name}.safetensors")
        self._end_summary(exported, budget)
        shutdown(self.dist)
        return exported

    def _report_due(self, total: int) -> bool:
        """Progress at the session's first iteration (something to see at once), then every print_freq."""
        return (self.iteration == self.start_iteration + 1 or self.iteration % self.config.logger.print_freq == 0
                or self.iteration == total)

    def _report_progress(self, logbook: Logbook | None, total: int, loss: float, rate: float,
                         budget: TimeBudget | None) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        if logbook:
            logbook.log(self.iteration, "train", {"loss": loss, "lr": lr, "it_per_s": rate})
        eta = (budget.seconds - budget.elapsed() if budget is not None
               else (total - self.iteration) / rate if rate > 0 else None)
        self.console.progress(self.iteration, total, loss, lr, rate, eta)

    def _follow_budget(self, budget: TimeBudget, total: int, stop_at: int | None) -> tuple[int, int]:
        fitted = budget.refit(self.iteration, total)
        if fitted is None:
            return total, min(total, stop_at) if stop_at is not None else total
        self._fit_to(fitted)
        if budget.fitted:
            self.console.event(self.iteration, f"time budget: {fitted} iterations fit "
                                               f"(was {total}; {format_duration(budget.elapsed())} used)")
        return fitted, min(fitted, stop_at) if stop_at is not None else fitted

    def _timed_save(self, budget: TimeBudget | None) -> None:
        started = time.perf_counter()
        self._save_state(budget)
        barrier(self.dist)
        self._save_seconds = time.perf_counter() - started
        if budget is not None:
            budget.reserve(2 * self._save_seconds)  # the last state and the exported weights

    def _timed_validate(self, logbook: Logbook | None, budget: TimeBudget | None) -> None:
        started = time.perf_counter()
        self._validate(logbook)
        if budget is not None:
            budget.reserve(time.perf_counter() - started + 2 * self._save_seconds)

    def _due(self, frequency: int | None, total: int) -> bool:
        return bool(frequency) and (self.iteration % frequency == 0 or self.iteration == total)

    # ------------------------------------------------------------------ what the console says

    def _start_summary(self, budget: TimeBudget | None, stop_at: int | None) -> tuple[str, list[str]]:
        options = self.config.train_set
        assert options is not None
        title = (f"{self.config.name}: {self.spec.describe()}, {count_parameters(self.net):,} parameters, "
                 f"on {self.device}, precision {self.precision.describe()}")
        images = self.dataset.images
        skipped = sorted(set(range(len(images))) - set(self.dataset.image_ids))
        data = (f"data: {options.name}: {len(images)} HR images ({self.dataset.num_images} used), "
                f"HR patch {options.gt_size}, batch {options.batch_size_per_gpu}"
                f"{f' × {self.dist.world_size} ranks' if self.dist.enabled else ''}, "
                f"scale{'s' if len(options.scales) > 1 else ''} {'/'.join(f'×{s}' for s in options.scales)}, "
                f"LR {'given' if options.dataroot_lq else 'made by MATLAB-exact bicubic'}")
        details = [data]
        if skipped:
            sizes = ", ".join(f"{Path(images.sources[i]).name} {images.hr(i).shape[1]}×{images.hr(i).shape[0]}"
                              for i in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            details.append(f"skipped {len(skipped)} image(s) smaller than the {options.gt_size}-pixel HR patch: "
                           f"{sizes}{more}")
        workers, cpus = options.num_worker_per_gpu, os.cpu_count() or 1
        if workers > cpus:
            details.append(f"data loader: {workers} workers on {cpus} CPUs (num_worker_per_gpu; more workers than "
                           "CPUs only compete with training)")
        if self.eval_sets:
            sets = ", ".join(f"{bench.name} ×{bench.scale} ({len(bench)} images)" for bench in self.eval_sets)
            details.append(f"validation: {sets}, every {self.config.val.val_freq} iterations")  # type: ignore[union-attr]
        details.append(self._plan(budget, stop_at))
        details += [f"note: {note}" for note in self.notes]
        details.append(f"writing to {self.folder}")
        return title, details

    def _plan(self, budget: TimeBudget | None, stop_at: int | None) -> str:
        total = self.options.total_iter
        start = f"resuming at iteration {self.iteration} of {total}" if self.iteration else f"{total} iterations"
        if budget is not None:
            left = budget.seconds - budget.elapsed()
            fit = "re-fitted" if budget.fitted else "fitted"
            return (f"plan: {start}; time budget {format_duration(budget.seconds)} "
                    f"({format_duration(left)} left): the length is {fit} to the measured speed as the run goes")
        until = f", this session until iteration {stop_at}" if stop_at is not None and stop_at < total else ""
        return f"plan: {start}{until}"

    def _end_summary(self, exported: Path | None, budget: TimeBudget | None) -> None:
        took = time.monotonic() - self.started
        used = f", {budget.elapsed() / budget.seconds:.0%} of the time budget" if budget is not None else ""
        best = (f"; best validation {self.best['psnr']:.3f} dB at iteration {self.best['iteration']}"
                if self.best else "")
        lr = self.optimizer.param_groups[0]["lr"]
        self.console.line(f"done: iteration {self.iteration} of {self.options.total_iter} in "
                          f"{format_duration(took)}{used}, final lr {lr:.2e}{best}; weights: {exported}")

    # ------------------------------------------------------------------ validation and export

    def inference_model(self) -> SRModel:
        """A deploy-ready copy of the weights to report (the EMA when there is one)."""
        source = self.ema.shadow if self.ema is not None else self.net
        net = copy.deepcopy(source).float().to(memory_format=torch.contiguous_format).eval()
        return SRModel(net, self.spec, name=self.config.name)

    def validate(self) -> list[SetScores]:
        """The ``val.metrics`` of the current (EMA) weights on every validation set and scale."""
        val = self.config.val
        metrics = val.metrics if val is not None and val.metrics else DEFAULT_METRICS
        model = self.inference_model()
        return [score_set(model, bench, metrics) for bench in self.eval_sets]

    def _validate(self, logbook: Logbook | None) -> None:
        if not self.dist.is_main or not self.eval_sets:
            return
        scores = self.validate()
        summary = "; ".join(f"{s.set_name} ×{s.scale} " + ", ".join(f"{name} {value:.4f}" for name, value
                                                                     in s.values.items()) for s in scores)
        self.console.event(self.iteration, f"validation: {summary}")
        psnr_names = [m.name for m in (self.config.val.metrics or DEFAULT_METRICS)  # type: ignore[union-attr]
                      if m.metric == "psnr"]
        psnrs = [s.values[psnr_names[0]] for s in scores] if psnr_names else []
        mean_psnr = sum(psnrs) / len(psnrs) if psnrs else math.nan
        if logbook:
            logbook.log(self.iteration, "val", {f"{s.set_name}_x{s.scale}_{name}": value
                                                for s in scores for name, value in s.values.items()}
                        | {"psnr": mean_psnr})
        if math.isfinite(mean_psnr) and mean_psnr > self.best.get("psnr", -math.inf):
            self.best = {"psnr": mean_psnr, "iteration": self.iteration}
            self.export(self.folder / "models" / "best.safetensors")

    def export(self, path: Path) -> Path | None:
        """Save the (EMA) weights as safetensors with their spec and training provenance."""
        if not self.dist.is_main:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"litesr.iteration": str(self.iteration), "litesr.experiment": self.config.name}
        if self.best:
            metadata["litesr.best"] = f"{self.best['psnr']:.4f} dB at iteration {self.best['iteration']}"
        return save_safetensors(path, self.inference_model().net, self.spec, metadata)
