"""The Classify sheet: image paths in column A, ``=CLASSIFY_IMAGE`` and ``=CLASSIFY_PROBS`` beside them.

The example paths point at ``examples/digits`` beside the workbook; the cached results are what the
shipped model says of them (computed at build time, when asked for).
"""

from __future__ import annotations

from pathlib import Path

from excel_addin import layout
from excel_addin.build.spec import ColorScale, SheetSpec, a1, sheet_ref

ROOT = Path(__file__).resolve().parents[2]
# The example images the Classify sheet points at (paths relative to the workbook's folder).
CLASSIFY_EXAMPLES = tuple(f"examples/digits/{digit}.png" for digit in range(10))
NO_MODEL_YET = "train first"

Prediction = tuple[int, list[float]]


def example_predictions() -> list[Prediction | None]:
    """What the shipped model says of each Classify example, for the cells' cached values.

    Probabilities are rounded to 3 decimals (what the cells show), so the build stays byte-identical on
    CPUs whose last float bits differ. An example or model that is missing gives None ("train first").
    """
    from ml.predict import PredictionError, load_classifier, shipped_model_path

    try:
        classifier = load_classifier(shipped_model_path())
    except PredictionError:
        return [None] * len(CLASSIFY_EXAMPLES)
    results: list[Prediction | None] = []
    for path in CLASSIFY_EXAMPLES:
        try:
            prediction = classifier.predict(ROOT / path)
        except PredictionError:
            results.append(None)
            continue
        results.append((prediction.digit, [round(float(p), 3) for p in prediction.probs]))
    return results


def classify_sheet(predictions: list[Prediction | None] | None = None) -> SheetSpec:
    """The sheet; ``predictions`` (one per example, see ``example_predictions``) are the formulas'
    cached values, "train first" where missing."""
    sheet = SheetSpec(layout.CLASSIFY_SHEET)
    sheet.column_width("A", 32)
    sheet.column_width("B", 16)
    sheet.column_width("C", 8, last="L")
    sheet.write("A1", "Classify handwritten digits with the trained CNN", "title")
    sheet.write(
        "A2",
        "Put the path of a PNG/JPG image in column A (relative to this workbook's folder or "
        "absolute). Column B predicts the digit, C:L give the probability of each digit.",
        "subtitle",
    )
    sheet.write(
        "A3",
        "Model: the Train sheet's model file if set, else model.pt in its output folder (once "
        "trained), else the model shipped with gradsheet.",
        "note",
    )
    head = layout.CLASSIFY_FIRST_ROW - 2  # 0-based header row, just above the first path
    sheet.write_row((head, 0), ("image path", "predicted digit", *(f"p({d})" for d in range(10))), "header")
    model = sheet_ref(layout.TRAIN_SHEET, layout.TRAIN_SETTING_CELLS["model_path"])
    run_folder = sheet_ref(layout.TRAIN_SHEET, layout.TRAIN_SETTING_CELLS["out_dir"])
    model_arg = f"{model},{run_folder}"  # empty cells arrive as None: the function's defaults
    predictions = predictions or [None] * len(CLASSIFY_EXAMPLES)
    for k, (path, cached) in enumerate(zip(CLASSIFY_EXAMPLES, predictions, strict=True)):
        row = layout.CLASSIFY_FIRST_ROW - 1 + k
        path_ref = a1((row, 0))
        digit, probabilities = cached if cached else (NO_MODEL_YET, ["-"] * 10)
        sheet.write((row, 0), path, "input_text")
        sheet.formula((row, 1), f"=CLASSIFY_IMAGE({path_ref},{model_arg})", digit, "int")
        sheet.formula(
            (row, 2), f"=CLASSIFY_PROBS({path_ref},{model_arg})", [list(probabilities)], "prob", spill=(1, 10)
        )
    first = layout.CLASSIFY_FIRST_ROW - 1
    sheet.conditional_formats.append(
        ColorScale((first, 2), (first + len(CLASSIFY_EXAMPLES) - 1, 11), "#FFFFFF", "#63BE7B")
    )
    return sheet
