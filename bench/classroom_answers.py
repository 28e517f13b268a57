"""The classroom benchmark's questions and their right answers, worked out in this process before the class
starts, so that every cell answer a simulated student gets from the server can be checked.

* BACKPROP_LOSS and BACKPROP_CURVE at learning rates and epochs drawn once: ``ml.backprop``'s values;
* CLASSIFY_PIXELS on real MNIST test digits (their 0-255 pixels, as a student's 28 x 28 range): the shipped
  model's digit and probabilities, computed here with ``ml.predict`` on the same prepared picture;
* MODEL_SUMMARY of model names and a stages text: ``ml.summary``'s layer table;
* a student's own trained model (CLASSIFY_PIXELS with the workbook's run folder): loaded here from the
  file the server delivered into that student's folder (``own_model_answer``).

A server answer is right when it equals the reference: numbers within ``REL_TOL`` (probabilities from a model
within ``PROB_TOL``: the server computes them in another process, possibly with other threads), everything
else exactly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REL_TOL = 1e-9  # JSON carries Python floats exactly; this only absorbs a last-bit difference
PROB_TOL = 1e-5  # a model's probabilities computed in another process
LEARNING_RATES = (0.1, 0.5, 1.0, 2.0)
MAX_LOSS_EPOCH = 400  # BACKPROP_LOSS epochs drawn up to this (cheap enough for a class)
MAX_CURVE_EPOCHS = 25
SPECS = ("tiny", "small", "default", "fast", "8,16 | 16,24 res | 24,32 sep")


@dataclass(frozen=True)
class Question:
    """One cell call: the function, its arguments as the student's cells hold them, the right answer."""

    function: str
    args: tuple
    answer: Any
    tolerance: float = REL_TOL
    label: str = ""  # the function's name in the latency table (default: ``function``)

    @property
    def name(self) -> str:
        return self.label or self.function


@dataclass
class Answers:
    """Questions by kind, drawn from one seed; ``digits`` also keeps each digit's true label."""

    kinds: dict[str, list[Question]] = field(default_factory=dict)
    labels: list[int] = field(default_factory=list)
    grids: list[list[list[int]]] = field(default_factory=list)

    def draw(self, rng: random.Random) -> Question:
        """A question of a kind drawn uniformly, then one of that kind."""
        return rng.choice(self.kinds[rng.choice(sorted(self.kinds))])


def backprop_questions(rng: random.Random, count: int) -> tuple[list[Question], list[Question]]:
    """BACKPROP_LOSS and BACKPROP_CURVE questions with ``ml.backprop``'s answers."""
    from ml import backprop

    losses, curves = [], []
    for _ in range(count):
        lr, epoch = rng.choice(LEARNING_RATES), rng.randint(0, MAX_LOSS_EPOCH)
        losses.append(Question("BACKPROP_LOSS", (lr, epoch), [[backprop.loss_at(lr, epoch)]]))
        lr, epochs = rng.choice(LEARNING_RATES), rng.randint(1, MAX_CURVE_EPOCHS)
        curve = [[float(value)] for value in backprop.loss_curve(lr, epochs)]
        curves.append(Question("BACKPROP_CURVE", (lr, epochs), curve))
    return losses, curves


def digit_questions(count: int) -> tuple[list[Question], list[int], list[list[list[int]]]]:
    """CLASSIFY_PIXELS on the first ``count`` MNIST test digits, answered by the shipped model here: half
    ask for the digit, half for the 10 probabilities."""
    from excel_addin.cells import prepared_pixels
    from ml.data import load_mnist
    from ml.predict import load_classifier, shipped_model_path

    data = load_mnist()
    classifier = load_classifier(shipped_model_path())
    questions, labels, grids = [], [], []
    for k in range(count):
        grid = data.test_x[k].tolist()
        probs = [float(p) for p in classifier.probabilities(prepared_pixels(grid)[None])[0]]
        digit = max(range(10), key=probs.__getitem__)
        if k % 2:
            questions.append(Question("CLASSIFY_PIXELS", (grid, True), [probs], PROB_TOL))
        else:
            questions.append(Question("CLASSIFY_PIXELS", (grid,), [[digit]]))
        labels.append(int(data.test_y[k]))
        grids.append(grid)
    return questions, labels, grids


def summary_questions() -> list[Question]:
    """MODEL_SUMMARY of model names and a stages text, answered by ``ml.summary``."""
    from ml.stages import custom_spec
    from ml.summary import layer_table
    from ml.summary_table import summary_table
    from ml.variants import VARIANTS

    questions = []
    for text in SPECS:
        spec = VARIANTS[text] if text in VARIANTS else custom_spec(text)
        table = [list(row) for row in summary_table(layer_table(spec), spec.n_params, empty="")]
        questions.append(Question("MODEL_SUMMARY", (text,), table))
    return questions


def prepare(seed: int = 0, backprop_count: int = 40, digit_count: int = 60) -> Answers:
    """Every question of a class, drawn from ``seed``, with its answer."""
    rng = random.Random(seed)
    losses, curves = backprop_questions(rng, backprop_count)
    digits, labels, grids = digit_questions(digit_count)
    kinds = {"BACKPROP_LOSS": losses, "BACKPROP_CURVE": curves, "CLASSIFY_PIXELS": digits}
    kinds["MODEL_SUMMARY"] = summary_questions()
    return Answers(kinds, labels, grids)


def own_model_answer(model: Path, grid: list[list[int]], out_dir: str) -> Question:
    """CLASSIFY_PIXELS(grid, TRUE, "", out_dir) as the student's own model (the file ``model``) answers it."""
    from excel_addin.cells import prepared_pixels
    from ml.predict import load_classifier

    probs = [float(p) for p in load_classifier(model).probabilities(prepared_pixels(grid)[None])[0]]
    return Question(
        "CLASSIFY_PIXELS", (grid, True, "", out_dir), [probs], PROB_TOL, "CLASSIFY_PIXELS own model"
    )


def differs(got: Any, want: Any, tolerance: float) -> bool:
    """Whether a cell's answer ``got`` (a 2-D list from the server) differs from ``want``."""
    if isinstance(want, list):
        return (
            not isinstance(got, list)
            or len(got) != len(want)
            or any(differs(g, w, tolerance) for g, w in zip(got, want, strict=False))
        )
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        if tolerance == PROB_TOL:
            return not abs(got - want) <= PROB_TOL
        return not math.isclose(got, want, rel_tol=tolerance, abs_tol=1e-12)
    return got != want
