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
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..archs import SRNet
from ..checkpoints import build_network, read_checkpoint, save_safetensors
from ..data.benchmark import open_benchmark
from ..data.dataset import SRTrainDataset
from ..data.image_store import TrainingImages
from ..data.loader import build_train_loader, cycle
from ..errors import LiteSRError
from ..evaluate import evaluate
from ..model import SRModel
from .config import DatasetOptions, TrainConfig
from .budget import TimeBudget
from .distributed import DistContext, barrier, device_for, init_distributed, mean_across_ranks, shutdown
from .ema import ModelEMA
from .init import apply_weight_init
from .logbook import Logbook
from .losses import build_pixel_loss
from .optim import build_optimizer, build_scheduler, cosine_restarts, multistep, with_warmup
from .state import list_states, load_state, restore_rng_states, save_state

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingError(LiteSRError):
    """The run cannot start or continue (bad resume state, no training set, …)."""


@dataclass
class ValidationScore:
    set_name: str
    scale: int
    psnr: float
    ssim: float


class Trainer:
    """Train the network a :class:`TrainConfig` describes.

    ``resume``: ``True`` continues from the newest state in the experiment folder (a fresh
    start if there is none), a path continues from that state file, ``False`` starts over
    (refusing to overwrite a folder that already holds states).
    """

    def __init__(self, config: TrainConfig, *, resume: bool | Path = False, device: str = "auto",
                 progress: bool = True) -> None:
        if config.train is None or config.train_set is None:
            raise TrainingError(f"{config.name}: the config has no train section or no datasets.train")
        self.config = config
        self.options = config.train
        self.dist: DistContext = init_distributed(torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                                                               else "cpu" if device == "auto" else device))
        if self.options.time_budget and self.dist.enabled:
            raise TrainingError("train.time_budget is for single-process runs: under torchrun the ranks would "
                                "disagree on when to stop; set train.total_iter instead")
        self.device = device_for(self.dist, device)
        self.folder = Path(config.experiment_dir)
        self.progress = progress and self.dist.is_main
        self.spec = config.network_g.to_spec()
        seed = config.manual_seed if config.manual_seed is not None else 0
        torch.manual_seed(seed + self.dist.rank)

        self.net: SRNet = self._build_network().to(self.device)
        if self.options.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
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
        self._resume(resume)
        self.loader = self._build_loader(config.train_set, seed)

    # ------------------------------------------------------------------ set-up

    def _build_network(self) -> SRNet:
        paths = self.config.path
        if paths.pretrain_network_g:
            checkpoint = read_checkpoint(paths.pretrain_network_g)
            net, spec = build_network(checkpoint)
            if spec.arch != self.spec.arch:
                raise TrainingError(f"pretrain_network_g is a {spec.arch}, but network_g is a {self.spec.arch}")
            return net.train()
        return apply_weight_init(self.spec.build(), self.options.weight_init).train()

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
                                io_backend=options.io_backend, progress=self.progress, name=options.name)
        dataset = SRTrainDataset(images, scales=options.scales, gt_size=options.gt_size, use_hflip=options.use_hflip,
                                 use_rot=options.use_rot, dataset_enlarge_ratio=options.dataset_enlarge_ratio,
                                 seed=seed, small_images="skip")
        return build_train_loader(dataset, options.batch_size_per_gpu, options.num_worker_per_gpu,
                                  scales=options.scales, seed=seed, rank=self.dist.rank,
                                  world_size=self.dist.world_size, shuffle=options.use_shuffle,
                                  pin_memory=options.pin_memory)

    # ------------------------------------------------------------------ resume

    def _resume(self, resume: bool | Path) -> None:
        states_dir = self.folder / "training_states"
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
        restore_rng_states(state["rng"])

    def _fit_to(self, total: int) -> None:
        """Make the run ``total`` iterations long, stretching the schedule's shape to it.

        Called once by a time-budgeted run; warm-up keeps its length (it is about the first
        steps' stability, not the run's length). The experiment's ``config.yml`` is
        rewritten, so resuming with it continues the same schedule.
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
            (self.folder / "config.yml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))

    def _save_state(self) -> Path | None:
        if not self.dist.is_main:
            return None
        payload = {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                   "scheduler": self.scheduler.state_dict(), "best": self.best}
        if self.ema is not None:
            payload["ema"] = self.ema.state_dict()
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
        dtype = AUTOCAST_DTYPES.get(self.options.precision)
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

    def run(self, stop_at: int | None = None) -> Path | None:
        """Train to ``total_iter`` and export the final weights; returns their path on rank 0.

        ``stop_at`` ends the session early at that iteration (saving a state, exporting
        nothing), so a long run can be split across sessions with the schedule unchanged.
        With ``train.time_budget`` a fresh run sets ``total_iter`` from its measured speed;
        a resumed one keeps its length. Either way the run stops at the deadline, saves a
        state and exports the weights it has reached.
        """
        total = self.options.total_iter
        end = min(total, stop_at) if stop_at is not None else total
        logbook = Logbook(self.folder, self.config.logger.use_tb_logger) if self.dist.is_main else None
        self._write_config()
        budget = (TimeBudget(self.options.time_budget, calibrate=self.iteration == 0)
                  if self.options.time_budget else None)
        out_of_time = False
        batches = self._batches()
        bar = tqdm(total=total, initial=self.iteration, disable=not self.progress, unit="it", dynamic_ncols=True)
        window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
        try:
            while self.iteration < end:
                loss = self.step(next(batches))
                self.iteration += 1
                bar.update(1)
                window_loss += float(loss)
                window_steps += 1
                if self.iteration % self.config.logger.print_freq == 0 or self.iteration == total:
                    mean_loss = float(mean_across_ranks(torch.tensor(window_loss / window_steps), self.dist))
                    rate = window_steps / (time.perf_counter() - window_start)
                    lr = self.optimizer.param_groups[0]["lr"]
                    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
                    if logbook:
                        logbook.log(self.iteration, "train", {"loss": mean_loss, "lr": lr, "it_per_s": rate})
                    window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
                if self._due(self.config.val.val_freq if self.config.val else None, total):
                    self._validate(logbook)
                if self._due(self.config.logger.save_checkpoint_freq, total):
                    self._save_state()
                    barrier(self.dist)
                if budget is not None:
                    fitted = budget.fitted_total(self.iteration, total)
                    if fitted is not None:
                        self._fit_to(fitted)
                        total, end = fitted, min(fitted, stop_at) if stop_at is not None else fitted
                        bar.total = total
                        if budget.calibrated:
                            tqdm.write(f"[iter {self.iteration}] time budget: the run will be {total} iterations")
                    if budget.expired() and self.iteration < end:
                        out_of_time = True
                        tqdm.write(f"[iter {self.iteration}] time budget spent: stopping before {total}")
                        self._validate(logbook)
                        break
        finally:
            bar.close()
            if logbook:
                logbook.close()
        if self.iteration < total:
            self._save_state()
            if not out_of_time:
                shutdown(self.dist)
                return None
        exported = self.export(self.folder / "models" / f"{self.config.name}.safetensors")
        shutdown(self.dist)
        return exported

    def _due(self, frequency: int | None, total: int) -> bool:
        return bool(frequency) and (self.iteration % frequency == 0 or self.iteration == total)

    # ------------------------------------------------------------------ validation and export

    def inference_model(self) -> SRModel:
        """A deploy-ready copy of the weights to report (the EMA when there is one)."""
        source = self.ema.shadow if self.ema is not None else self.net
        net = copy.deepcopy(source).float().to(memory_format=torch.contiguous_format).eval()
        return SRModel(net, self.spec, name=self.config.name)

    def validate(self) -> list[ValidationScore]:
        """PSNR/SSIM of the current (EMA) weights on every validation set and scale."""
        scores = []
        val = self.config.val
        metric = val.metrics[0] if val and val.metrics else None
        for options in self.config.val_sets:
            for scale in options.scales:
                dataset = open_benchmark(options.dataroot_gt[0], scale,
                                         lr=options.dataroot_lq[0] if options.dataroot_lq else None,
                                         make_lr=options.dataroot_lq is None, name=options.name)
                result = evaluate(self.inference_model(), dataset, scale, progress=False,
                                  y_channel=metric.test_y_channel if metric else True,
                                  crop_border=metric.crop_for(scale) if metric else scale)
                scores.append(ValidationScore(options.name, scale, result.psnr, result.ssim))
        return scores

    def _validate(self, logbook: Logbook | None) -> None:
        if not self.dist.is_main or not self.config.val_sets:
            return
        scores = self.validate()
        summary = " ".join(f"{s.set_name}×{s.scale} {s.psnr:.3f}dB/{s.ssim:.4f}" for s in scores)
        tqdm.write(f"[iter {self.iteration}] {summary}")
        mean_psnr = sum(s.psnr for s in scores) / len(scores)
        if logbook:
            logbook.log(self.iteration, "val", {f"{s.set_name}_x{s.scale}_{m}": getattr(s, m)
                                                for s in scores for m in ("psnr", "ssim")} | {"psnr": mean_psnr})
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
