"""gradsheet's named networks (``VARIANTS``): staged designs, and ``s6``, the course assignment's network.

gradsheet's default: under 20,000 parameters (a "small" variant under 8,000), BatchNorm, Dropout, GAP.

Design, one sentence per choice:

* **3x3 convolutions in three stages (28x28, 14x14, 7x7) separated by 2x2 max-pooling**: stacked 3x3s give
  the largest receptive field per parameter; after the last stage a unit sees 32x32 input pixels (more
  than the 28x28 digit), so every output can use the whole digit's shape.
* **Few channels at full resolution, more after each pooling**: the 28x28 stage dominates compute, the 7x7
  stage dominates parameters, so this spends both where they are cheap.
* **BatchNorm after every convolution (convolutions without bias)**: it keeps activations well scaled so a
  one-cycle schedule can use a high learning rate and converge in ~15 epochs, and its batch noise is a
  mild regulariser; the bias is redundant with BN's shift.
* **Channel dropout (Dropout2d) of 5% after each pooling stage**: with so few parameters the network
  under- rather than over-fits, so only light dropout helps; dropping whole feature maps (not pixels, whose
  neighbours carry the same information) is what regularises a conv layer, and it needs 1/200th of the
  random numbers, which matters on a CPU.
* **A 1x1 convolution to 10 channels then global average pooling, no fully connected head**: a dense
  layer over 7x7x32 features would alone cost ~15k parameters; GAP has none, and makes each class map a
  spatial "evidence" map that is averaged, which generalises well to shifted digits.
* **Max-pooling before the BN and ReLU of a stage's last convolution** (conv -> pool -> BN -> ReLU): the
  same parameters and nearly the same function (pooling commutes with ReLU), but normalisation and
  activation run on a 4x smaller tensor; on a CPU these memory-bound passes over the 16x28x28 activations
  cost more than the convolutions, so an epoch is ~30% faster.
* **Depthwise-separable convolutions in the 7x7 stage of the small and wide variants** (a 3x3 filter
  per channel, then a 1x1 mix across channels, no BN/ReLU between, as in Xception): 9*c_in + c_in*c_out
  parameters instead of 9*c_in*c_out, so within 8,000 parameters the last stage can be 2.5x wider (32 and
  40 channels instead of 16 and 16), which is worth more than full 3x3 filters there; the earlier stages
  keep full convolutions, where few input channels make the saving small.
* **Residual connections in ``tiny``** (``shortcut`` ... ``add`` layers, ``StageLayout(residual=True)``): a
  convolution that keeps its channel count gets its input added back after its BatchNorm, before its ReLU
  (max-pooled where the convolution is pooled), so it learns a correction to its input. They cost no
  parameters and let ``tiny`` be eight convolutions deep with 12 to 32 channels; the same layers without
  them ended 0.11 points lower on seed 1 (99.43% against 99.54%).
* **``ml.batchnorm.BatchNorm2d``** is ``nn.BatchNorm2d`` (same parameters and state dict) with a faster CPU
  backward for channels_last tensors of 8 or 24 channels, where PyTorch's multi-threaded kernel is ~3x
  slower than its single-threaded one; an epoch on this 2-core CPU takes ~30% less time with it.

Variants: "default" (19,650 parameters), "small" (7,850), "wide" (19,666: the default's budget with a
separable 7x7 stage of 64 and 64 channels and a wider 14x14 stage: ~0.04 points more accurate in our
runs, epochs ~25% slower on a CPU, where depthwise convolutions are inefficient) and "strided" (the
default's layers with a stride-2 second convolution instead of the first pooling: ~20% faster again,
~0.04 points less accurate in our runs). The small variant sets its dropout to 0 (the layers stay, as
no-ops): at 7.9k parameters the network underfits, and in our runs 5% dropout cost it 0.1 points of test
accuracy (99.42% against 99.52%, measured with an earlier all-full-convolution layout).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .spec import N_CLASSES, ModelSpec, ModelSpecError
from .stages import Stage, StageLayout, staged


def _s6() -> ModelSpec:
    """The course assignment's network (ERA S6), layer for layer: 16,976 parameters.

    Three unpadded 3x3 convolutions and a max-pool, a 1x1 convolution, four more 3x3 convolutions (the last
    two padded), each with BN, ReLU and 5% (element) dropout after the pooling, then a 5x5 average pool
    and a bias-free linear layer to the 10 digits (the original ends with log_softmax, which the loss
    applies here).
    """

    def block(c_in: int, k: int, padding: int, dropout: bool) -> list[tuple]:
        layers = [("conv", c_in, 16, k, 1, padding, 1, False), ("bn", 16), ("relu",)]
        return layers + ([("dropout", 0.05)] if dropout else [])

    layers = [*block(1, 3, 0, False), *block(16, 3, 0, False), *block(16, 3, 0, False), ("maxpool", 2)]
    layers += block(16, 1, 0, True) + block(16, 3, 0, True)
    layers += block(16, 3, 0, True) + block(16, 3, 0, True)
    layers += block(16, 3, 1, True) + block(16, 3, 1, True)
    layers += [("avgpool", 5), ("linear", 16, N_CLASSES, False)]
    return ModelSpec(tuple(layers), "s6")


# gradsheet's default design (also the Train sheet's custom model until a student changes it)
DEFAULT_STAGES = (Stage((8, 16), dropout=0.05), Stage((16, 24), dropout=0.05), Stage((24, 32)))
VARIANTS: dict[str, ModelSpec] = {
    "default": staged(DEFAULT_STAGES, name="default"),
    "small": staged((Stage((8, 12)), Stage((16, 16)), Stage((32, 40), separable=True)), name="small"),
    "wide": staged(
        (Stage((8, 16), dropout=0.05), Stage((24, 32), dropout=0.05), Stage((64, 64), separable=True)),
        name="wide",
    ),
    "strided": staged(DEFAULT_STAGES, StageLayout(strided_stem=True), name="strided"),
    # under 5,000 parameters: a full 3x3 stem of 12 channels, every later convolution depthwise-separable,
    # residual connections around those that keep their channel count
    "tiny": staged(
        (Stage((12, 12, 12)), Stage((20, 20, 20)), Stage((32, 32))),
        StageLayout(separable_from=1, residual=True),
        name="tiny",
    ),
    # the fast preset's model: a stride-2 5x5 stem, stages at 14x14, 7x7 and 3x3 (34,602 parameters)
    "fast": staged(
        (Stage((16, 24)), Stage((32, 32)), Stage((48,))),
        StageLayout(stem_stride=2, stem_kernel=5),
        name="fast",
    ),
    "s6": _s6(),
}


CUSTOM = "custom"  # the model name whose stages come from the settings (a student's design)


def spec_from_dict(data: Mapping[str, Any]) -> ModelSpec:
    """The spec a checkpoint stores; checkpoints of gradsheet before layer lists stored stage settings."""
    if not isinstance(data, Mapping):
        raise ModelSpecError(f"a model spec must be a record, got {type(data).__name__}")
    if "layers" in data:
        unknown = set(data) - {"layers", "name"}
        if unknown:
            raise ModelSpecError(f"unknown model spec fields: {', '.join(sorted(map(str, unknown)))}")
        return ModelSpec(**data)
    return _legacy_spec(data)


def _legacy_spec(data: Mapping[str, Any]) -> ModelSpec:
    """A spec from the stage settings older checkpoints store (variant, stages, dropout, pool_first,
    strided_stem, separable_from: convolutions from that index on are separable)."""
    try:
        dropout = float(data["dropout"])
        stages = [Stage(tuple(int(c) for c in stage), dropout=dropout) for stage in data["stages"]]
        separable_from = data.get("separable_from")
        layout = StageLayout(
            pool_first=bool(data.get("pool_first", False)),
            strided_stem=bool(data.get("strided_stem", False)),
            separable_from=None if separable_from is None else int(separable_from),
        )
        return staged(stages, layout, name=str(data.get("variant", "custom")))
    except ModelSpecError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise ModelSpecError(f"the model spec is malformed ({type(error).__name__}: {error})") from None
