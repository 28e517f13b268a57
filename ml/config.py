"""The training settings, specified once: ``TrainConfig`` with each field's default, type, bounds, help.

Everything that shows or reads a setting is generated from this spec: the command line
(``add_arguments``), the Train sheet's rows, labels, notes and dropdown lists (``sheet_settings``), the
macros' cell parsing and the worker hand-off (``config_from_values``, ``to_json``/``from_json``). A
setting's metadata is a ``Setting``: its help line, its label on the Train sheet (None: command line only),
its choices or bounds.

A **preset** is a named set of values (``PRESETS``); explicit values win over the preset's, which win over
the field defaults. "All training images" has one spelling: ``subset = 0``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from . import values
from .run_dir import DEFAULT_RUN_DIR
from .spec import ModelSpec
from .stages import custom_spec
from .tta import TTA_VIEWS
from .variants import CUSTOM, VARIANTS

SCHEDULES = ("onecycle", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda", "mps")  # the device cell's dropdown; "cuda:N" is accepted too
GPU_BY_NUMBER = "cuda:N"  # the form of a device that names one GPU by its number (cuda:0, cuda:1, ...)
AMP_MODES = ("auto", "off", "bf16", "fp16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
N_TRAIN_IMAGES = 60_000

# Named sets of settings; a value given explicitly (flag, cell) wins over its preset's.
PRESETS: dict[str, dict[str, Any]] = {
    "standard": {},  # the field defaults: the benchmarked 15-epoch run
    # to 99.5% as fast as possible: 8 epochs of the stride-2-stem model, the test set evaluated once (after
    # the last epoch) with 5-view test-time augmentation
    "fast": {"model": "fast", "epochs": 8, "eval_every": 0, "tta": 5},
}


@dataclass(frozen=True)
class Setting:
    """What a TrainConfig field means and accepts; ``label`` puts it on the Train sheet."""

    help: str
    label: str | None = None
    choices: Callable[[], tuple[str, ...]] | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    flag: str | None = None  # the command-line flag when it is not --field-name
    also: tuple[str, ...] = ()  # forms accepted besides the choices, named in the help (e.g. cuda:N)


def setting(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field carrying its ``Setting``."""
    return field(default=default, metadata={"setting": Setting(help, **spec)})


def _models() -> tuple[str, ...]:
    return (*VARIANTS, CUSTOM)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; the defaults are the benchmarked settings.

    Fields with a label appear on the Train sheet, in this order.
    """

    preset: str = setting(
        "standard", "a named set of the settings below (explicit values win)", label="preset",
        choices=lambda: tuple(PRESETS),
    )  # fmt: skip
    model: str = setting(
        "default", "the CNN: a gradsheet variant, s6 (the course's), or custom (your own stages: --stages, "
        "or the Train sheet's Custom model table)",
        label="model", choices=_models,
    )  # fmt: skip
    stages: str = setting(
        "", "the custom model's stages, e.g. '8,16 drop=0.05 | 16,24,24 res | 24,32 sep' (model custom; sep: "
        "depthwise-separable, res: residual connections, drop: dropout after the stage)",
    )  # fmt: skip
    epochs: int = setting(15, "passes over the training images", label="epochs", minimum=1, maximum=1000)
    batch_size: int = setting(
        512, "images per optimisation step", label="batch size", minimum=1, maximum=N_TRAIN_IMAGES
    )
    lr: float = setting(
        0.4, "peak learning rate (one-cycle), or the constant / initial one", label="learning rate",
        positive=True,
    )  # fmt: skip
    device: str = setting(
        "auto", "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps", label="device",
        choices=lambda: DEVICES, also=(GPU_BY_NUMBER,),
    )  # fmt: skip
    seed: int = setting(1, "random seed (same seed, same run)", label="seed", minimum=0, maximum=2**32 - 1)
    subset: int = setting(
        0, "train on the first N training images (0 = all 60,000)", label="training images",
        minimum=0, maximum=N_TRAIN_IMAGES,
    )  # fmt: skip
    out_dir: str = setting(
        DEFAULT_RUN_DIR, "output folder: checkpoint, metrics, charts (relative: beside the workbook)",
        label="output folder", flag="--run-dir",
    )  # fmt: skip
    # command line only
    schedule: str = setting("onecycle", "learning-rate schedule", choices=lambda: SCHEDULES)
    resume: bool = setting(False, "continue from RUN_DIR/model.pt")
    momentum: float = setting(0.9, "SGD (Nesterov) momentum", minimum=0.0, maximum=0.999)
    weight_decay: float = setting(
        5e-4, "L2 weight decay (not on BatchNorm and biases)", minimum=0.0, maximum=1.0
    )
    label_smoothing: float = setting(0.05, "label smoothing of the loss", minimum=0.0, maximum=0.9)
    augment: bool = setting(True, "random affine warp of every training batch")
    amp: str = setting("auto", "autocast precision (auto: bf16 where native)", choices=lambda: AMP_MODES)
    channels_last: bool = setting(True, "channels_last activations (faster on CPUs and GPUs)")
    compile: str = setting(
        "off", "torch.compile the model: default, reduce-overhead (CUDA graphs) or max-autotune",
        choices=lambda: COMPILE_MODES,
    )  # fmt: skip
    cuda_graph: bool = setting(
        True, "on a GPU, launch each training step's forward and backward as one replayed CUDA graph",
    )  # fmt: skip
    threads: int = setting(0, "torch intra-op threads (0: torch's default)", minimum=0, maximum=1024)
    eval_batch_size: int = setting(2000, "images per evaluation batch", minimum=1, maximum=100_000)
    eval_every: int = setting(
        1, "evaluate on the test set every N epochs (0: only after the last epoch, which always is)",
        minimum=0, maximum=1000,
    )  # fmt: skip
    tta: int = setting(
        0, "test-time augmentation: 0 (off), 5 (the image and its four 1-pixel shifts) or 9 (3x3 shifts), "
        "in evaluation and in prediction", minimum=0, maximum=9,
    )  # fmt: skip
    dry_run: bool = setting(False, "one epoch of a couple of batches, to check the set-up")

    def validate(self) -> TrainConfig:
        """Check every field against its spec (ValueError naming the first bad one); returns self."""
        for f in fields(self):
            parse_setting(f.name, getattr(self, f.name))
        if self.tta not in TTA_VIEWS:
            raise ValueError(f"tta must be one of {', '.join(map(str, TTA_VIEWS))} views, got {self.tta}")
        self.model_spec()
        return self

    def model_spec(self) -> ModelSpec:
        """The network to train: a named variant, or the custom stages (ModelSpecError when unusable)."""
        return custom_spec(self.stages) if self.model == CUSTOM else VARIANTS[self.model]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @staticmethod
    def from_json(text: str) -> TrainConfig:
        """A validated TrainConfig from its JSON (unknown keys are an error, not silently dropped)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("training settings must be a JSON object")
        return config_from_values(data, apply_preset=False)


FIELDS = {f.name: f for f in fields(TrainConfig)}


def spec_of(name: str) -> Setting:
    return FIELDS[name].metadata["setting"]


def default_of(name: str) -> Any:
    return FIELDS[name].default if FIELDS[name].default is not MISSING else None


def choices_of(name: str) -> tuple[str, ...] | None:
    spec = spec_of(name)
    return spec.choices() if spec.choices else None


def label_of(name: str) -> str:
    return spec_of(name).label or name


def parse_setting(name: str, raw: Any) -> Any:
    """A setting's value from a cell, JSON or command-line text, checked against its spec."""
    if name not in FIELDS:
        raise ValueError(f"unknown training setting {name!r}; known: {', '.join(FIELDS)}")
    spec, kind = spec_of(name), type(default_of(name))
    label = name
    if kind is bool:
        return values.as_flag(raw, label)
    if kind is int:
        return values.as_whole(raw, label, spec.minimum, spec.maximum)
    if kind is float:
        return values.as_real(raw, label, spec.minimum, spec.maximum, spec.positive)
    if name == "device" and isinstance(raw, str) and raw.strip().lower().startswith("cuda:"):
        index = raw.strip().lower()[5:]
        if not index.isdigit():
            raise ValueError(f"device must be cuda:N with a GPU number N (cuda:0, cuda:1, ...), got {raw!r}")
        return raw.strip().lower()
    if spec.choices:
        return values.as_choice(raw, label, spec.choices(), shown=(*spec.choices(), *spec.also))
    text = values.as_text(raw, label)
    if not text and default_of(name):
        raise ValueError(f"{label} is empty")
    return text


def is_empty(raw: Any) -> bool:
    """An empty cell or argument: it takes the preset's value or the default."""
    return raw is None or (isinstance(raw, str) and not raw.strip())


def config_from_values(given: Mapping[str, Any], apply_preset: bool = True) -> TrainConfig:
    """A validated TrainConfig from raw values (cells, JSON, CLI); empty ones take preset or default.

    Unknown names are an error. With ``apply_preset`` the preset's values fill what was not given.
    """
    return TrainConfig(**chosen_values(given, apply_preset)).validate()


def chosen_values(given: Mapping[str, Any], apply_preset: bool = True) -> dict[str, Any]:
    """The values raw settings choose, each parsed, before the whole is checked: the explicit ones and
    (with ``apply_preset``) the preset's for the others; a field not in it keeps TrainConfig's default.
    A caller so sees the model chosen before its stages are needed (the Train sheet's Custom model table)."""
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown training settings: {', '.join(unknown)}")
    explicit = {name: parse_setting(name, raw) for name, raw in given.items() if not is_empty(raw)}
    preset = explicit.get("preset", default_of("preset"))
    return {**(PRESETS[preset] if apply_preset else {}), **explicit}


def preset_values(preset: str) -> dict[str, Any]:
    """Every sheet setting's value under a preset (for the Train sheet's preset table)."""
    return {name: PRESETS[preset].get(name, default_of(name)) for name in sheet_settings()}


def sheet_settings() -> tuple[str, ...]:
    """The settings shown on the Train sheet, in order."""
    return tuple(f.name for f in fields(TrainConfig) if spec_of(f.name).label)


# ---- command line -----------------------------------------------------------------------------------


def flag_of(name: str) -> str:
    return spec_of(name).flag or "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, skip: Iterable[str] = ()) -> None:
    """One option per setting, from the spec. Options not given are absent from the parsed namespace
    (argparse.SUPPRESS), so presets and defaults are applied by ``config_from_values``."""
    for name in FIELDS:
        if name in skip:
            continue
        spec, default = spec_of(name), default_of(name)
        flags = [flag_of(name)]
        shown = "all" if name == "subset" and default == 0 else default if default != "" else "none"
        help_text = f"{spec.help} (default: {shown})"
        if isinstance(default, bool):
            parser.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                help=help_text,
            )  # fmt: skip
            continue
        choices, named = choices_of(name), flags[0][2:]
        if choices:
            metavar = "{" + ",".join((*choices, *spec.also)) + "}"
        else:
            metavar = "DIR" if named.endswith("-dir") else named.replace("-", "_").upper()
        parser.add_argument(*flags, dest=name, default=argparse.SUPPRESS, metavar=metavar, help=help_text)


def presets_help() -> str:
    """One line per preset: what it sets."""
    lines = []
    for name, preset in PRESETS.items():
        what = ", ".join(f"{k}={v}" for k, v in preset.items()) or "the defaults"
        lines.append(f"{name}: {what}")
    return "; ".join(lines)
