"""The training step as a CUDA graph (ml.cuda_graph): when a run uses one, the on-device progress totals the
step accumulates, and, on a machine with a GPU, that a graphed run trains as the eager one does."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from ml import cuda_graph, train, training
from ml.config import TrainConfig, config_from_values
from ml.run_dir import RunDir

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_when_a_run_cannot_use_a_graph_it_says_why():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert cuda_graph.unsupported_reason(cuda, True, False, False) is None
    assert "CUDA device" in cuda_graph.unsupported_reason(cpu, True, False, False)
    assert "last batch" in cuda_graph.unsupported_reason(cuda, False, False, False)
    assert "fp16" in cuda_graph.unsupported_reason(cuda, True, True, False)
    assert "torch.compile" in cuda_graph.unsupported_reason(cuda, True, False, True)


def test_a_cpu_run_calls_its_step_directly(tmp_path):
    cfg = TrainConfig(device="cpu", subset=600, epochs=1, out_dir=str(tmp_path / "r"))
    run = training.set_up(cfg, RunDir(cfg.out_dir).prepare(), lambda event: None)
    assert not isinstance(run.forward_backward, cuda_graph.GraphedStep)


def test_the_setting_from_the_command_line_and_a_cell():
    assert TrainConfig().cuda_graph is True
    assert config_from_values({"cuda_graph": "no"}).cuda_graph is False
    with pytest.raises(ValueError, match="cuda_graph must be yes or no"):
        config_from_values({"cuda_graph": "maybe"})
    parser = train.build_parser()
    assert parser.parse_args(["--no-cuda-graph"]).cuda_graph is False


def test_step_totals_sum_loss_and_hits_and_remember_the_first_bad_step():
    totals = training.StepTotals(torch.device("cpu"))
    labels = torch.tensor([0, 1, 2, 3])
    logits = F.one_hot(torch.tensor([0, 1, 0, 0]), 10).float()  # 2 of 4 right
    for loss in (0.5, 0.25, math.nan, 1.0, math.inf):
        totals.add(torch.tensor(loss), logits, labels)
    loss_sum, correct, steps, first_bad = totals.values.tolist()
    assert (correct, steps, first_bad) == (10, 5, 3)
    assert math.isnan(loss_sum)
    totals.values.zero_()
    totals.add(torch.tensor(0.5), logits, labels)
    assert totals.values.tolist() == [2.0, 2.0, 1.0, 0.0]


@needs_cuda
def test_each_replay_draws_new_random_numbers():
    gen = torch.Generator(device="cuda").manual_seed(1)
    out = torch.zeros(2, 8, device="cuda")

    def body(x, y):
        out[0].copy_(torch.rand(8, generator=gen, device="cuda") + x.sum() * 0)
        out[1].copy_(F.dropout(torch.ones(8, device="cuda"), 0.5))

    step = cuda_graph.GraphedStep(body, (gen,))
    x, y = torch.zeros(4, device="cuda"), torch.zeros(4, device="cuda")
    seen = []
    for _ in range(cuda_graph.WARMUP_STEPS + 4):
        step(x, y)
        seen.append(out.clone())
    assert step.graph is not None and step.failed is None
    replays = seen[cuda_graph.WARMUP_STEPS :]
    for a, b in zip(replays, replays[1:], strict=False):
        assert not torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])


def _train(tmp_path, name, **settings):
    """A run's epochs through ``train_epoch``; the run and the last epoch's figures."""
    cfg = TrainConfig(device="cuda", out_dir=str(tmp_path / name), **settings)
    run = training.set_up(cfg, RunDir(cfg.out_dir).prepare(), lambda event: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed capture warns: fail the test instead
        for epoch in range(1, cfg.epochs + 1):
            stats = training.train_epoch(run, epoch, lambda: False)
    return run, stats


@needs_cuda
def test_a_graphed_epoch_trains_as_the_eager_one(tmp_path):
    # no randomness inside the step (no augmentation; the small model's dropout is 0), same batches
    same = {"model": "small", "augment": False, "subset": 8192, "epochs": 1}
    eager, eager_stats = _train(tmp_path, "eager", cuda_graph=False, **same)
    graphed, graphed_stats = _train(tmp_path, "graphed", cuda_graph=True, **same)
    assert isinstance(graphed.forward_backward, cuda_graph.GraphedStep)
    assert graphed.forward_backward.graph is not None
    assert graphed_stats.train_loss == pytest.approx(eager_stats.train_loss, rel=0.02)
    assert graphed_stats.train_acc == pytest.approx(eager_stats.train_acc, abs=0.02)
    for (name, a), b in zip(
        eager.model.state_dict().items(), graphed.model.state_dict().values(), strict=True
    ):
        if a.is_floating_point():
            assert (a - b).norm() <= 0.05 * a.norm() + 1e-6, name
    assert int(graphed.model.state_dict()["net.1.num_batches_tracked"]) == graphed.steps


@needs_cuda
def test_a_graphed_run_with_augmentation_learns_as_the_eager_one(tmp_path):
    # 3 epochs of 8,192 images: eager on a CPU ends at ~92% train / ~94% test accuracy
    same = {"subset": 8192, "epochs": 3}
    _, eager_stats = _train(tmp_path, "eager", cuda_graph=False, **same)
    run, stats = _train(tmp_path, "graphed", **same)
    assert run.forward_backward.graph is not None
    assert stats.train_acc > 0.85 and stats.train_acc == pytest.approx(eager_stats.train_acc, abs=0.05)
    assert training._evaluate(run).acc > 0.9
