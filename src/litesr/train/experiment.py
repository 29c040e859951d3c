"""Which configuration a run continues with: the experiment's own, never the recipe re-read.

A run writes its resolved options to ``experiments/<name>/config.yml`` (``--set`` values
applied, a time budget's fitted ``total_iter`` and stretched schedule included). Resuming
reads that file back, so the run continues *as it was configured*: re-reading the recipe
would silently restore its original length (a budgeted run would run toward the recipe's
20,000 iterations) and lose every ``--set``. ``--set`` given when resuming still applies, on
top of the experiment's file.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .options import TrainConfig
from .state import STATE_PATTERN
from .yaml_options import ConfigError

__all__ = ["CONFIG_NAME", "ResumePlan", "plan_resume"]

#: The resolved options of a run, inside its experiment folder.
CONFIG_NAME = "config.yml"


@dataclass(frozen=True)
class ResumePlan:
    """The configuration to run, what to resume from (see :class:`~.trainer.Trainer`), and notes for the user."""

    config: TrainConfig
    resume: bool | Path
    notes: list[str] = field(default_factory=list)


def plan_resume(resume: str | None, recipe: str | Path | None,
                load: Callable[[Path], TrainConfig]) -> ResumePlan:
    """Resolve ``--resume`` (None, ``"auto"``, an experiment folder or a state file) against the recipe.

    ``load`` reads an option file (with the command line's overrides); it is called on the
    experiment's ``config.yml`` when there is one to continue, else on the recipe.
    """
    if resume is None:
        return ResumePlan(load(Path(_required(recipe))), False)
    if resume == "auto":
        config = load(Path(_required(recipe)))
        saved = config.experiment_dir / CONFIG_NAME
        if not saved.is_file():
            return ResumePlan(config, True)  # nothing to continue yet: a fresh start
        return ResumePlan(load(saved), True, [f"continuing {config.experiment_dir} as configured in {saved} "
                                             f"(not re-reading {recipe})"])
    target = Path(resume)
    if target.is_dir():
        folder, state = target, True
    elif STATE_PATTERN.fullmatch(target.name) and target.is_file():
        folder, state = target.parent.parent, target  # experiments/<name>/training_states/iter_N.state
    else:
        raise ConfigError(f"{target}: not an experiment folder or a training state (iter_<N>.state) to resume")
    saved = folder / CONFIG_NAME
    if not saved.is_file():
        if recipe is None:
            raise ConfigError(f"{folder}: no {CONFIG_NAME} in it, so it is not an experiment to resume; "
                              "give the recipe too (litesr train RECIPE.yml --resume STATE)")
        return ResumePlan(load(Path(recipe)), state)
    notes = [f"continuing as configured in {saved}" + (f" (not re-reading {recipe})" if recipe else "")]
    return ResumePlan(_located(load(saved), folder), state, notes)


def _located(config: TrainConfig, folder: Path) -> TrainConfig:
    """The experiment's config, writing where its folder now is (it may have been moved or copied)."""
    if config.experiment_dir.resolve() == folder.resolve():
        return config
    root = str(folder)
    return replace(config, path=replace(config.path, experiments_root=root, visualization=f"{root}/visualization"))


def _required(recipe: str | Path | None) -> str | Path:
    if recipe is None:
        raise ConfigError("--resume without an experiment folder needs the recipe (CONFIG.yml)")
    return recipe
