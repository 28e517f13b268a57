"""The 2-2-2 backprop engine against independent references: torch autograd, finite differences, and
the published worked example."""

import math

import numpy as np
import pytest
import torch

from ml import backprop
from ml.backprop import COLUMNS, GRADIENT_NAMES, Network

E_TOTAL = COLUMNS.index("E_total")
DEFAULT_RATES = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0)


def torch_loss(network: Network, weights: torch.Tensor) -> torch.Tensor:
    """The same network written independently as tensor algebra, for autograd to differentiate."""
    x = torch.tensor(network.inputs, dtype=torch.float64)
    t = torch.tensor(network.targets, dtype=torch.float64)
    b1, b2 = network.biases
    hidden = torch.sigmoid(weights[:4].reshape(2, 2) @ x + b1)
    logits = weights[4:].reshape(2, 2) @ hidden + b2
    if network.output == "sigmoid":
        return 0.5 * ((t - torch.sigmoid(logits)) ** 2).sum()
    return -(t * torch.log_softmax(logits, dim=0)).sum()


def random_networks(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for k in range(count):
        yield Network(
            inputs=tuple(rng.uniform(-2, 2, 2)),
            targets=tuple(rng.uniform(0, 1, 2)),
            weights=tuple(rng.normal(0, 1.5, 8)),
            output=("sigmoid", "softmax")[k % 2],
            biases=tuple(rng.uniform(-1, 1, 2)) if k % 4 >= 2 else (0.0, 0.0),
        )


@pytest.mark.parametrize("network", list(random_networks(200, seed=7)), ids=lambda n: n.output)
def test_gradients_equal_torch_autograd(network):
    w = torch.tensor(network.weights, dtype=torch.float64, requires_grad=True)
    loss = torch_loss(network, w)
    loss.backward()
    f = backprop.forward(network, network.weights)
    grads = backprop.backward(network, network.weights, f)
    assert f.E_total == pytest.approx(loss.item(), abs=1e-12, rel=1e-12)
    np.testing.assert_allclose(grads, w.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("network", list(random_networks(40, seed=11)), ids=lambda n: n.output)
def test_gradients_agree_with_central_finite_differences(network):
    w0 = np.array(network.weights)
    grads = backprop.backward(network, network.weights, backprop.forward(network, network.weights))
    h = 1e-6
    for k in range(8):
        plus, minus = w0.copy(), w0.copy()
        plus[k] += h
        minus[k] -= h
        numeric = (
            backprop.forward(network, tuple(plus)).E_total - backprop.forward(network, tuple(minus)).E_total
        ) / (2 * h)
        assert grads[k] == pytest.approx(numeric, abs=1e-8, rel=1e-6)


@pytest.mark.slow
def test_trajectory_matches_torch_sgd_for_100_epochs():
    """Whole training runs agree with torch's own SGD on the independent torch network."""
    for network in (Network(), Network(output="softmax"), Network.worked_example()):
        w = torch.tensor(network.weights, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=0.8)
        table = backprop.trajectory(0.8, 100, network)
        for epoch in range(101):
            optimizer.zero_grad()
            loss = torch_loss(network, w)
            loss.backward()
            assert table[epoch, E_TOTAL] == pytest.approx(loss.item(), rel=1e-12, abs=1e-15)
            np.testing.assert_allclose(table[epoch, 1:9], w.detach().numpy(), rtol=1e-12, atol=1e-15)
            optimizer.step()


def test_worked_example_matches_published_figures():
    """The widely reproduced worked example (inputs 0.05/0.1, targets 0.01/0.99, biases 0.35/0.6, lr 0.5)."""
    rows = backprop.trajectory_rows(0.5, 1, Network.worked_example())
    first, second = rows
    assert first["E_total"] == pytest.approx(0.298371109, abs=1e-9)
    assert first["h1"] == pytest.approx(0.3775, abs=1e-12)
    assert first["a_h1"] == pytest.approx(0.593269992, abs=1e-9)
    assert first["a_h2"] == pytest.approx(0.596884378, abs=1e-9)
    assert first["a_o1"] == pytest.approx(0.75136507, abs=1e-8)
    assert first["a_o2"] == pytest.approx(0.772928465, abs=1e-9)
    assert first["E1"] == pytest.approx(0.274811083, abs=1e-9)
    assert first["E2"] == pytest.approx(0.023560026, abs=1e-9)
    assert first["dE_dw5"] == pytest.approx(0.082167041, abs=1e-9)
    assert first["dE_dw1"] == pytest.approx(0.000438568, abs=1e-9)
    published_after_one_update = {
        "w1": 0.149780716, "w2": 0.19956143, "w3": 0.24975114, "w4": 0.29950229,
        "w5": 0.35891648, "w6": 0.408666186, "w7": 0.511301270, "w8": 0.561370121,
    }  # fmt: skip
    for name, value in published_after_one_update.items():
        assert second[name] == pytest.approx(value, abs=1e-8), name


def test_loss_decreases_monotonically_and_faster_for_larger_rates():
    curves = {lr: backprop.loss_curve(lr, 100) for lr in DEFAULT_RATES}
    for lr, curve in curves.items():
        assert len(curve) == 101
        assert np.all(np.diff(curve) < 0), f"lr={lr} is not monotonically decreasing"
    for slower, faster in zip(DEFAULT_RATES[:-1], DEFAULT_RATES[1:], strict=True):
        assert np.all(curves[faster][1:] < curves[slower][1:])
    assert curves[0.1][0] == pytest.approx(0.014181377937891659, rel=1e-14)
    assert curves[2.0][100] < 1e-7 < curves[0.1][100]


def test_epoch_zero_is_the_initial_weights_and_rows_chain_by_the_update_rule():
    network = Network(output="softmax", biases=(0.1, -0.2))
    table = backprop.trajectory(1.0, 5, network)
    assert tuple(table[0, 1:9]) == network.weights
    grads = [COLUMNS.index(name) for name in GRADIENT_NAMES]
    np.testing.assert_allclose(table[1:, 1:9], table[:-1, 1:9] - 1.0 * table[:-1, grads], rtol=0, atol=0)
    assert list(table[:, 0]) == [0, 1, 2, 3, 4, 5]


def test_softmax_outputs_are_probabilities_and_survive_huge_logits():
    network = Network(output="softmax", weights=(1, 1, 1, 1, 800, 0, -800, 0), targets=(1.0, 0.0))
    f = backprop.forward(network, network.weights)
    assert f.a_o1 + f.a_o2 == pytest.approx(1.0)
    assert math.isfinite(f.E_total)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": (1, 2, 3)}, "weights must be 8 numbers, got 3"),
        ({"inputs": (1, "x")}, "inputs must be 2 numbers"),
        ({"targets": (1, float("inf"))}, "targets must be finite"),
        ({"output": "relu"}, "'sigmoid' or 'softmax'"),
    ],
)
def test_bad_network_configuration_says_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Network(**kwargs)


@pytest.mark.parametrize(
    ("lr", "epochs", "message"),
    [
        (0, 5, "positive"),
        (-0.5, 5, "positive"),
        (float("nan"), 5, "positive"),
        ("fast", 5, "must be a number"),
        (0.5, -1, "must not be negative"),
        (0.5, 2.5, "whole number"),
        (0.5, 10**9, "at most"),
    ],
)
def test_bad_rate_or_epochs_says_what_is_wrong(lr, epochs, message):
    with pytest.raises(ValueError, match=message):
        backprop.trajectory(lr, epochs)


def test_cached_trajectories_are_read_only_copies_for_callers():
    table = backprop.trajectory(0.5, 3)
    table[0, E_TOTAL] = 123.0  # a caller's copy: the cache is unaffected
    assert backprop.loss_at(0.5, 0) == pytest.approx(0.014181377937891659)
