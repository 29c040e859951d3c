"""Typed schema for BasicSR-style YAML training/test option files.

The option files the papers ship (``train_SCNet-T-x4.yml``, ``test_SCNet-T-x4.yml``) parse
unchanged: every key they use is either honoured, accepted as informational (``num_gpu``,
``dist_params``, SPAN's official ``img_range``/``rgb_mean``) or reported. LiteSR adds a few
keys in the same style: ``HRImageDataset`` (an HR-only folder, LR made on the fly by
MATLAB-compatible bicubic), a dataset's ``scales`` (multi-scale LESRCNN), and in ``train``
``grad_clip``, ``precision``, ``channels_last``, ``compile`` and ``weight_init``.

Rules:

* A key LiteSR does not know is an error with a "did you mean" (``manual_sed`` must not
  silently mean seed 0), all of a file's reported at once; BasicSR keys LiteSR knows it
  does not use are one warning, returned by :func:`load_config` with the others;
  ``strict=True`` makes every warning an error too.
* Anything LiteSR cannot honour (a GAN loss, an unknown optimizer, a scale mismatch, a
  negative learning rate, a value of the wrong type) raises :class:`ConfigError` with one
  sentence naming the file and the key path.
* Numbers are read the YAML 1.2 way as well: ``1e-3`` is a float even without BasicSR's
  ``!!float`` tag, and a whole float (``!!float 5e3``) is accepted where an int is expected.
* Reading the YAML and ``--set`` overrides lives in :mod:`.yaml_options`, typed key access
  in :mod:`.sections`, the dataclasses in :mod:`.options`, each section's parser in its own
  module (:mod:`.network_section`, :mod:`.dataset_section`, :mod:`.train_section`,
  :mod:`.scheduler_section`, :mod:`.val_section`); this module reads a whole file.
* Paths are kept as written (relative paths are relative to the working directory, as in
  BasicSR) and are not checked here: placeholders like ``Path to your data`` parse, and
  fail later, when the data is opened.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .dataset_section import parse_datasets
from .network_section import parse_network
from .options import (
    CosineAnnealingRestartLROptions, DatasetOptions, LoggerOptions, LossOptions, MetricOptions, MultiStepLROptions,
    NetworkOptions, OptimizerOptions, PathOptions, TrainConfig, TrainOptions, ValOptions,
)
from .sections import REQUIRED, Context, Section, as_int
from .train_section import UNSUPPORTED_PIXEL_ONLY, parse_duration, parse_train
from .val_section import parse_val
from .yaml_options import ConfigError, apply_override, describe, read_yaml

__all__ = [
    "ConfigError", "CosineAnnealingRestartLROptions", "DatasetOptions", "LoggerOptions",
    "LossOptions", "MetricOptions", "MultiStepLROptions", "NetworkOptions", "OptimizerOptions",
    "PathOptions", "TrainConfig", "TrainOptions", "ValOptions", "apply_override", "load_config",
    "parse_config", "parse_duration", "read_yaml",
]


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = (),
                strict: bool = False) -> tuple[TrainConfig, list[str]]:
    """Read, override (``key.path=value`` strings, applied before validation) and validate."""
    raw, duplicate_warnings = read_yaml(path)
    for override in overrides:
        apply_override(raw, override)
    ctx = Context(str(path), strict)
    for warning in duplicate_warnings:
        ctx.warn(None, warning.removeprefix(f"{ctx.source}: "))
    config = _parse(ctx, raw)
    return config, ctx.warnings


def parse_config(raw: Mapping[str, Any], source: str = "<config>",
                 strict: bool = False) -> tuple[TrainConfig, list[str]]:
    """Validate an already-loaded option dict (e.g. :meth:`TrainConfig.to_dict` output)."""
    ctx = Context(source, strict)
    return _parse(ctx, raw), ctx.warnings


_GAN_KEYS = ("network_d",)


def _parse(ctx: Context, raw: Mapping[str, Any]) -> TrainConfig:
    top = Section(ctx, "", raw)
    name = top.str("name", REQUIRED)
    if not name.strip():
        top.fail("name", "must not be empty")
    model_type = top.take("model_type", "SRModel")
    if model_type != "SRModel":
        top.fail("model_type", f"unsupported model type {model_type!r}: LiteSR supports SRModel only")
    for key in _GAN_KEYS:
        if top.has(key):
            top.fail(key, f"{UNSUPPORTED_PIXEL_ONLY} (no discriminator)")
    scale = top.int("scale", minimum=1)
    num_gpu = top.take("num_gpu")
    if num_gpu is not None and num_gpu != "auto":
        num_gpu = as_int(top, "num_gpu", num_gpu, minimum=0)
    manual_seed = top.int("manual_seed", minimum=0)

    network, scale = parse_network(top, scale)
    datasets = parse_datasets(top, scale, network)
    path = _parse_path(top.section("path"), name)
    train = parse_train(top.section("train")) if top.has("train") else top.take("train")
    if train is not None:
        weight_inits = ("official", *network.architecture.weight_inits)
        if train.weight_init not in weight_inits:
            ctx.fail("train.weight_init", f"{train.weight_init!r} is not implemented for {network.type}; "
                                          f"use {' or '.join(weight_inits)}")
    val = parse_val(top.section("val")) if top.has("val") else top.take("val")
    logger = _parse_logger(top.section("logger"))
    dist_params = top.take("dist_params")
    if dist_params is not None and not isinstance(dist_params, dict):
        top.fail("dist_params", f"must be a section, got {describe(dist_params)}")
    top.done()
    ctx.finish()

    has_train_set = any(dataset.is_train for dataset in datasets)
    if train is not None and not has_train_set:
        ctx.fail("datasets.train", "is required when the file has a train section")
    if has_train_set and train is None:
        ctx.fail("train", "is required when the file has a datasets.train entry")
    return TrainConfig(name=name, scale=scale, network_g=network, path=path, datasets=datasets, train=train,
                       val=val, logger=logger, model_type=model_type, num_gpu=num_gpu, manual_seed=manual_seed,
                       dist_params=dist_params, source=ctx.source)


def _parse_path(section: Section, name: str) -> PathOptions:
    experiments_root = section.str("experiments_root", f"experiments/{name}")
    options = PathOptions(
        experiments_root=experiments_root,
        visualization=section.str("visualization", f"{experiments_root}/visualization"),
        pretrain_network_g=section.str("pretrain_network_g"),
        strict_load_g=section.bool("strict_load_g", True),
        param_key_g=section.str("param_key_g", "params"),
        resume_state=section.str("resume_state"),
    )
    section.done()
    return options


def _parse_logger(section: Section) -> LoggerOptions:
    wandb = section.section("wandb")
    project = wandb.take("project")
    if project is not None:
        section.ctx.warn(wandb.key("project"),
                         f"{wandb.key('project')}: Weights & Biases logging is not supported; ignored")
    wandb.take("resume_id")
    wandb.done()
    options = LoggerOptions(
        print_freq=section.int("print_freq", 100, minimum=1),
        save_checkpoint_freq=section.int("save_checkpoint_freq", 5000, minimum=1),
        use_tb_logger=section.bool("use_tb_logger", False),
    )
    section.done()
    return options
