"""The data sets: deterministic from the seed, the documented shapes and ranges, nothing downloaded, and the
regression targets rescaled onto [-1, 1] by the training targets' range."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from helpers import make_spec
from onward.data import Dataset, load_dataset
from onward.data.functions import TARGET_NOISE, f1, f2
from onward.data.mnist_1d import mnist1d
from onward.model import init_model
from onward.spec import DataSpec, Spec, SpecError

# small sizes keep the tests fast; the defaults are checked once each below
SMALL = {"mnist1d": {"samples": 200}, "f1": {"samples": 600}, "f2": {"samples": 600}, "diabetes": {},
         "digits": {}, "synthetic": {"samples": 80}}


def dataset(set_name: str, seed: int = 1, **data: Any) -> Dataset:
    # Spec directly, without validation: no rule learns a regression set yet, so parse_spec refuses them with PEPITA.
    if set_name == "mnist1d":
        mnist1d.cache_clear()  # generate again: determinism is not the cache's
    return load_dataset(Spec(name="t", seed=seed, hidden=(8,), data=DataSpec(set=set_name, **data)))


def arrays(d: Dataset) -> list[np.ndarray]:
    return [d.x_train, d.y_train, d.x_test, d.y_test]


@pytest.mark.parametrize("set_name", sorted(SMALL))
def test_same_seed_same_data_other_seed_other_data(set_name: str) -> None:
    a, b, c = (dataset(set_name, seed, **SMALL[set_name]) for seed in (5, 5, 6))
    for u, v in zip(arrays(a), arrays(b), strict=True):
        np.testing.assert_array_equal(u, v)
    assert (a.y_min, a.y_max) == (b.y_min, b.y_max)
    # digits and diabetes are shipped: the seed changes their split
    assert any(u.shape != w.shape or not np.array_equal(u, w) for u, w in zip(arrays(a), arrays(c), strict=True))
    assert not np.array_equal(a.x_train, c.x_train)


def test_mnist1d_default_shapes_range_and_class_balance() -> None:
    d = dataset("mnist1d", seed=3)
    assert d.task == "classification" and d.classes == 10 and d.input_dim == 40
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    assert d.y_train.dtype == np.int64 and d.x_train.dtype == np.float64
    assert np.bincount(d.y_train).tolist() == [400] * 10  # the generator makes samples // 10 of each class
    assert np.bincount(d.y_test).tolist() == [100] * 10  # and the split is stratified
    assert 0.8 < d.max_abs < 2.0  # std 0.25: fits every activation_frac up to 14
    assert abs(float(np.concatenate([d.x_train, d.x_test]).std()) - 0.25) < 1e-9
    assert d.y_min is None and d.y_max is None


def test_mnist1d_samples_test_fraction_and_scale() -> None:
    d = dataset("mnist1d", seed=3, samples=300, test_fraction=0.1, scale=2.0)
    assert d.x_train.shape == (270, 40) and d.x_test.shape == (30, 40)
    assert np.bincount(d.y_test).tolist() == [3] * 10
    x, _ = mnist1d(300, 3)
    np.testing.assert_array_equal(np.sort(np.concatenate([d.x_train, d.x_test]), axis=None), np.sort(2 * x, axis=None))


def test_mnist1d_leaves_the_global_random_state_alone() -> None:
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.get_state()[1].copy(), random.getstate())
    mnist1d.cache_clear()
    mnist1d(200, 9)
    assert np.array_equal(np.random.get_state()[1], expected[0]) and random.getstate() == expected[1]


@pytest.mark.parametrize(("name", "f", "dim"), [("f1", f1, 2), ("f2", f2, 5)])
def test_functions(name: str, f: Any, dim: int) -> None:
    d = dataset(name, seed=4)
    assert d.task == "regression" and d.classes == 1 and d.input_dim == dim
    assert d.x_train.shape == (10000, dim) and d.x_test.shape == (2000, dim)  # the paper's 10k / 2k
    assert d.y_train.dtype == np.float64 and d.max_abs <= 1.0
    # the test targets are the clean function, in original units after denormalising
    np.testing.assert_allclose(d.denormalise(d.y_test), f(d.x_test), rtol=0, atol=1e-12)
    # the training targets carry the paper's label noise: 5 % of their standard deviation
    noise = d.denormalise(d.y_train) - f(d.x_train)
    assert abs(noise.std() / f(d.x_train).std() - TARGET_NOISE) < 0.005
    small = dataset(name, seed=4, samples=600, scale=0.5)
    assert small.x_train.shape == (500, dim) and small.x_test.shape == (100, dim) and small.max_abs <= 0.5


def test_diabetes() -> None:
    d = dataset("diabetes", seed=2)
    assert d.task == "regression" and d.classes == 1 and d.input_dim == 10
    assert len(d.y_train) + len(d.y_test) == 442 and d.x_test.shape == (110, 10)
    assert 0.15 < d.max_abs < 0.2  # scikit-learn's scaling
    targets = np.concatenate([d.denormalise(d.y_train), d.denormalise(d.y_test)])
    np.testing.assert_allclose(np.sort(targets), np.sort(load_diabetes().target), rtol=0, atol=1e-9)


@pytest.mark.parametrize("set_name", ["f1", "f2", "diabetes"])
def test_regression_targets_span_minus_one_to_one_exactly(set_name: str) -> None:
    d = dataset(set_name, seed=7, **SMALL[set_name])
    assert d.y_train.min() == -1.0 and d.y_train.max() == 1.0
    assert d.y_min is not None and d.y_max is not None and d.y_min < d.y_max
    np.testing.assert_allclose((d.denormalise(d.y_train).min(), d.denormalise(d.y_train).max()),
                               (d.y_min, d.y_max), rtol=1e-15)
    # the test targets use the training range: near [-1, 1], not necessarily inside it
    assert -1.5 < d.y_test.min() and d.y_test.max() < 1.5


def test_classification_has_no_target_range() -> None:
    with pytest.raises(ValueError, match="only a regression data set"):
        dataset("digits").denormalise(np.zeros(3))


def test_nothing_is_downloaded_or_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a data set tried to use the network")

    import mnist1d.data

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(mnist1d.data, "get_dataset", no_network)
    monkeypatch.chdir(tmp_path)  # get_dataset would leave a pickle here
    for set_name, data in SMALL.items():
        assert len(dataset(set_name, seed=11, **data).y_train) > 0
    assert list(tmp_path.iterdir()) == []


def test_spec_defaults_per_set() -> None:
    assert (DataSpec().samples, DataSpec().test_fraction) == (400, 0.25)  # digits, synthetic: as before
    assert (DataSpec(set="synthetic").samples, DataSpec(set="diabetes").test_fraction) == (400, 0.25)
    assert (DataSpec(set="mnist1d").samples, DataSpec(set="mnist1d").test_fraction) == (5000, 0.2)
    assert (DataSpec(set="f1").samples, DataSpec(set="f2").test_fraction) == (12000, 2000 / 12000)
    assert DataSpec(set="f2").task == "regression" and DataSpec(set="mnist1d").task == "classification"
    spec = make_spec(data={"set": "mnist1d", "samples": 1000, "test_fraction": 0.25})
    assert (spec.data.samples, spec.data.test_fraction) == (1000, 0.25)


def error_of(**overrides: Any) -> str:
    with pytest.raises(SpecError) as exc:
        make_spec(**overrides)
    return str(exc.value)


def test_a_classification_rule_refuses_a_regression_set() -> None:
    for set_name in ("f1", "f2", "diabetes", "pressure"):
        for rule in ("ff", "fgrad", "last_layer"):
            msg = error_of(data={"set": set_name}, rule={"name": rule})
            assert (f'`data.set` = "{set_name}" is a regression data set; rule `{rule}` needs classification: '
                    "expected one of digits, iris, synthetic, mnist1d") in msg
    assert "`rule.name` must be one of" in error_of(data={"set": "f1"}, rule={"name": "bp"})


def test_bad_sample_counts() -> None:
    assert "`data.samples` must be a multiple of 10 (10 equal classes) and at least 200 for mnist1d, got 205" in \
        error_of(data={"set": "mnist1d", "samples": 205})
    assert "at least 200 for mnist1d, got 100" in error_of(data={"set": "mnist1d", "samples": 100})
    assert "`data.samples` must be at least 20 for f1, got 10" in error_of(data={"set": "f1", "samples": 10})
    assert ("`data.set` must be one of ('digits', 'iris', 'synthetic', 'mnist1d', 'f1', 'f2', 'diabetes', 'pressure'), "
            "got 'mnist'") in error_of(data={"set": "mnist"})
    assert "`data.test_fraction` must be in [0.05, 0.5], got 0.6" in error_of(data={"set": "f2", "test_fraction": 0.6})


def test_a_pepita_model_on_mnist1d() -> None:
    spec = make_spec(data={"set": "mnist1d", "samples": 200})
    model = init_model(spec, load_dataset(spec))  # the test formats (activation_frac 11) hold the data
    assert model.dims == (40, 16, 10)
