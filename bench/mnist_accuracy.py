"""Accuracy and prediction, the MNIST benchmark's last sections: each model trained with the default
settings per seed (final test accuracy, without and with test-time augmentation, wall and training time);
and the prediction of one image file (warm latency) and of user-style pictures of MNIST test digits with
the MNIST-style preprocessing against the same pictures fed as they are.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from epoch_timer import EpochTimer
from mnist_table import as_percent, mean_of_all, median_or_none

from ml.checkpoint import load_checkpoint, model_from_checkpoint
from ml.config import TrainConfig
from ml.data import load_mnist
from ml.model import build_model, count_parameters
from ml.predict import default_model_path, load_classifier
from ml.run_dir import RunDir
from ml.training import evaluate, train
from ml.user_pictures import STYLES, as_is_28, user_style_png

ACCURACY_TTA = 5  # the accuracy runs' final checkpoints are also evaluated with this many TTA views


def tta_accuracy(model_path: Path, views: int = ACCURACY_TTA, images: int | None = None) -> float:
    """Test accuracy of a run's final checkpoint with ``views``-view test-time augmentation, on the whole
    test set or its first ``images``."""
    data = load_mnist()
    model = model_from_checkpoint(load_checkpoint(model_path), str(model_path))
    return evaluate(model, data.test_x[:images], data.test_y[:images], tta=views).acc


def run_accuracy(variant: str, seeds: list[int], epochs: int, work: Path, threads: int) -> dict:
    runs = []
    for seed in seeds:
        cfg = TrainConfig(
            seed=seed,
            model=variant,
            epochs=epochs,
            out_dir=str(work / f"{variant}-seed{seed}"),
            threads=threads,
        )
        timer = EpochTimer()
        t0 = time.perf_counter()
        ended = train(cfg, [timer])
        wall = time.perf_counter() - t0
        # a failed or stopped run's checkpoint is an earlier epoch's: no final TTA figure for it
        tta = tta_accuracy(RunDir(cfg.out_dir).checkpoint) if ended.status == "completed" else None
        runs.append(
            {
                "seed": seed,
                "status": ended.status,
                "epochs": ended.epochs_done,
                "final_test_acc": ended.final_test_acc,
                "final_test_acc_tta": tta,
                "best_test_acc": ended.best_test_acc,
                "wall_s": wall,
                "train_epoch_s": timer.train_seconds,
                "train_s": sum(timer.train_seconds),  # training alone: no evaluation, saving or set-up
                "per_epoch": timer.epochs,
                "out_dir": cfg.out_dir,
            }
        )
        print(
            f"  {variant} seed {seed}: final {ended.final_test_acc:.4%} (best {ended.best_test_acc:.4%}, "
            f"TTA {ACCURACY_TTA} {as_percent(tta)}) in {ended.epochs_done} epochs, {wall:.0f}s",
            flush=True,
        )
    finals = [r["final_test_acc"] for r in runs]
    return {
        "model": variant,
        "params": count_parameters(build_model(variant)),
        "epochs": epochs,
        "config": asdict(TrainConfig(model=variant, epochs=epochs)),
        "runs": runs,
        "mean_final_test_acc": statistics.fmean(finals),
        "median_train_epoch_s": median_or_none([s for r in runs for s in r["train_epoch_s"]]),
        "std_final_test_acc": statistics.pstdev(finals) if len(finals) > 1 else 0.0,
        "tta_views": ACCURACY_TTA,
        "mean_final_test_acc_tta": mean_of_all([r["final_test_acc_tta"] for r in runs]),
    }


def prediction_checks(model_path: Path, n_images: int, work: Path) -> dict:
    clf = load_classifier(model_path)
    data = load_mnist()
    folder = work / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for i in range(n_images):
        paths.append(user_style_png(data.test_x[i].numpy(), folder / f"d{i}.png", style=i))
        labels.append(int(data.test_y[i]))
    preds = [clf.predict(p).digit for p in paths]
    naive = clf.probabilities(np.stack([as_is_28(p) for p in paths])).argmax(1)
    # MNIST's own test digits, same count, straight through the network
    x = data.test_x[:n_images].numpy().astype(np.float32) / 255
    own = clf.probabilities(x).argmax(1)
    # warm latency of one file
    for _ in range(10):
        clf.predict(paths[0])
    times = []
    for i in range(200):
        t0 = time.perf_counter()
        clf.predict(paths[i % len(paths)])
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "model": str(model_path),
        "images": n_images,
        "styles": len(STYLES),
        "user_style_acc": float(np.mean(np.array(preds) == labels)),
        "as_is_acc": float(np.mean(naive == np.array(labels))),
        "mnist_same_digits_acc": float(np.mean(own == data.test_y[:n_images].numpy())),
        "latency_ms_median": statistics.median(times),
        "latency_ms_p90": float(np.percentile(times, 90)),
    }


def run_accuracies(args: argparse.Namespace, work: Path) -> dict:
    result = {}
    for model in args.models:
        print(f"accuracy: {model} model, seeds {args.seeds}, {args.epochs} epochs", flush=True)
        result[model] = run_accuracy(model, args.seeds, args.epochs, work, args.threads)
    return result


def run_predict(args: argparse.Namespace, work: Path) -> dict:
    trained = work / f"default-seed{args.seeds[0] if args.seeds else 1}" / "model.pt"
    model_path = trained if trained.is_file() else default_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        return prediction_checks(model_path, args.predict_images, Path(tmp))
