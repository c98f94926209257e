"""Fused scoring path and vectorized feature encoding against the plain modules (CPU, seeded)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from uplift.features import FeatureEncoder
from uplift.fitting import _schedule, split
from uplift.model import UpliftModel
from uplift.nets import get_architecture
from uplift.scoring import FusedForward, supports

torch.set_num_threads(1)


def _net(architecture: str, cardinalities: list[int], representation, head, n_outputs: int):
    torch.manual_seed(0)
    net = get_architecture(architecture)(
        n_numeric=5,
        cardinalities=cardinalities,
        n_arms=4,
        n_outputs=n_outputs,
        representation=representation,
        head=head,
        dropout=0.1,
    )
    for p in net.parameters():  # move the biases and embeddings off their initial values
        p.data.add_(0.1 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize(
    ("architecture", "cardinalities", "representation", "head", "n_outputs"),
    [
        ("dragonnet", [4, 7, 31], (32, 16), (8,), 1),
        ("tarnet", [3], (20, 20, 20), (10, 10), 2),
        ("dragonnet", [], (16,), (), 1),
        ("tarnet", [5, 2], (), (6,), 2),
    ],
)
def test_fused_forward_equals_the_modules(
    architecture, cardinalities, representation, head, n_outputs
) -> None:
    net = _net(architecture, cardinalities, representation, head, n_outputs)
    rng = np.random.default_rng(0)
    numeric = torch.from_numpy(rng.normal(size=(300, 5)).astype(np.float32))
    codes = torch.from_numpy(
        np.column_stack([rng.integers(0, c, 300) for c in cardinalities]).astype(np.int64)
        if cardinalities
        else np.zeros((300, 0), np.int64)
    )
    with torch.inference_mode():
        expected = net(numeric, codes)["outcomes"]
        got = FusedForward(net)(numeric, codes)
    assert got.shape == expected.shape == (300, 4, n_outputs)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=1e-5)


def test_fused_forward_refuses_sequence_networks() -> None:
    net = get_architecture("tarnet")(
        n_numeric=2,
        cardinalities=[],
        n_arms=2,
        n_outputs=1,
        representation=(4,),
        head=(4,),
        sequence_encoder="gru",
        vocab_size=5,
        max_len=3,
    )
    assert not supports(net)
    with pytest.raises(ValueError, match="without a sequence encoder"):
        FusedForward(net)


def _old_codes(col: pd.Series, levels: list[str]) -> np.ndarray:
    """The previous element-by-element encoding, kept here as the reference."""
    found = pd.Index(levels, dtype=object).get_indexer(col.astype(str).to_numpy(object)) + 1
    found[col.isna().to_numpy()] = 0
    return found


def test_vectorized_categorical_codes_match_string_lookup() -> None:
    rng = np.random.default_rng(1)
    train = pd.DataFrame(
        {
            "x": rng.normal(size=500),
            "obj": rng.choice(["a", "b", "c"], 500),
            "cat": pd.Categorical(rng.choice(["lo", "hi"], 500)),
            "flag": rng.random(500) < 0.5,
            "mixed": pd.Series(rng.choice([1, 2, "z"], 500), dtype=object),
        }
    )
    enc = FeatureEncoder.fit(train)
    new = pd.DataFrame(
        {
            "x": [0.0, 1.0, 2.0, 3.0],
            "obj": ["a", "unseen", None, "c"],
            "cat": pd.Categorical(["hi", None, "mid", "lo"], categories=["mid", "lo", "hi"]),
            "flag": [True, False, True, False],
            "mixed": pd.Series([2, "z", np.nan, 7], dtype=object),
        },
        index=[10, 3, 7, 1],  # an index that is not 0..n-1
    )
    numeric, codes = enc.transform(new)
    for j, name in enumerate(enc.categorical_columns):
        np.testing.assert_array_equal(codes[:, j], _old_codes(new[name], enc.levels[name]))
    assert codes[1, enc.categorical_columns.index("obj")] == 0  # unseen -> unknown row
    assert codes[1, enc.categorical_columns.index("cat")] == 0  # missing -> unknown row
    assert codes[0, enc.categorical_columns.index("cat")] > 0
    expected = (new[["x"]].to_numpy() - enc.means[0]) / enc.scales[0]
    np.testing.assert_allclose(numeric, expected, rtol=1e-6)
    assert numeric.dtype == np.float32 and codes.dtype == np.int64


def test_kept_fused_members_score_one_user_as_a_batch_and_follow_a_refit() -> None:
    """A fitted model keeps one FusedForward per member: one user at a time scores as the
    whole batch does, and a second fit on the same object scores with the new weights."""
    rng = np.random.default_rng(3)
    n = 600
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["u", "v", "w"], n)})
    t = rng.choice(["control", "offer"], n)
    y = (rng.random(n) < 0.3 + 0.2 * (t == "offer") * (X["a"] > 0)).astype(float)
    params = {"representation": (8,), "head": (4,), "max_epochs": 3, "verbose": False}
    model = UpliftModel(random_state=0, **params).fit(X, t, y, control="control")
    batch = model.effect(X.iloc[:20])
    one_by_one = np.vstack([model.effect(X.iloc[[i]]) for i in range(20)])
    np.testing.assert_allclose(one_by_one, batch, rtol=1e-6, atol=1e-7)
    model.set_params(random_state=1).fit(X, t, y, control="control")
    fresh = UpliftModel(random_state=1, **params).fit(X, t, y, control="control")
    np.testing.assert_array_equal(model.effect(X), fresh.effect(X))
    assert not np.array_equal(model.effect(X.iloc[:20]), batch)


def test_large_data_schedule_and_validation_cap() -> None:
    model = UpliftModel()
    # small data keeps its schedule: batch n/8 up to 1024, at least 8 epochs, base learning rate
    assert _schedule(model, 470, small=True) == (64, 409, 40, 1e-3)
    batch, epochs, patience, lr = _schedule(model, 900_000, small=False)
    assert batch == 4096 and epochs == 14 and patience == 5
    assert lr == pytest.approx(2e-3)  # sqrt(4096 / 1024) x the base rate
    assert _schedule(model, 35_000, small=False)[:2] == (1024, 88)
    explicit = UpliftModel(batch_size=512, max_epochs=3, patience=2, learning_rate=5e-4)
    assert _schedule(explicit, 900_000, small=False) == (512, 3, 2, 5e-4)

    arm = np.repeat([0, 1, 2], [500_000, 300_000, 200_000])
    train, val = split(arm, 0.3, seed=0, cap=100_000)
    assert len(val) == 100_000 and len(train) == 900_000
    assert np.bincount(arm[val]).tolist() == [50_000, 30_000, 20_000]
    assert not np.intersect1d(train, val).size


# one small network trained long enough for a penalty's effect to show (the penalty tests below)
PENALTY_PARAMS = {
    "representation": (32, 32),
    "head": (16,),
    "criterion": "factual",
    "n_estimators": 1,
    "max_epochs": 40,
    "batch_size": 64,
    "patience": 40,
    "verbose": False,
    "random_state": 0,
}


def test_head_difference_shrinks_heterogeneity_but_not_the_average_effect() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    X = rng.normal(size=(n, 3))
    labels = np.array(["control", "a"])[rng.integers(0, 2, n)]
    tau = 1.0 + X[:, 0]  # average effect 1, heterogeneity sd 1
    y = X[:, 1] + (labels == "a") * tau + rng.normal(scale=0.5, size=n)
    params = PENALTY_PARAMS
    free = UpliftModel(head_difference=0.0, **params).fit(X, labels, y, control="control")
    tied = UpliftModel(head_difference=1e3, **params).fit(X, labels, y, control="control")
    free_tau, tied_tau = free.effect(X)[:, 0], tied.effect(X)[:, 0]
    assert np.corrcoef(free_tau, tau)[0, 1] > 0.9  # unpenalized: the heterogeneity is learned
    assert tied_tau.std() < 0.2 * free_tau.std()  # tied heads: almost constant effect
    assert abs(tied_tau.mean() - tau.mean()) < 0.15  # the output bias is free: the ATE stays
    with pytest.raises(ValueError, match="head_difference must be >= 0"):
        UpliftModel(head_difference=-1.0, **params).fit(X, labels, y, control="control")


def test_value_difference_shrinks_the_order_value_effect_not_the_conversion_effect() -> None:
    """Zero-inflated revenue: the penalty flattens each incentive's order-value difference from
    the control's across users, while the conversion effect keeps its heterogeneity."""
    rng = np.random.default_rng(5)
    n = 3000
    X = rng.normal(size=(n, 3))
    labels = np.array(["control", "a"])[rng.integers(0, 2, n)]
    treated = labels == "a"
    p = 1 / (1 + np.exp(-(-0.5 + X[:, 0] * treated)))  # conversion effect varies with x0
    converted = (rng.random(n) < p).astype(float)
    value = np.exp(3.0 + 0.3 * X[:, 1] + 0.4 * X[:, 2] * treated)  # value effect varies with x2
    y = np.column_stack([converted, converted * value])
    params = PENALTY_PARAMS
    free = UpliftModel(value_difference=0.0, **params).fit(X, labels, y, control="control")
    tied = UpliftModel(value_difference=1e3, **params).fit(X, labels, y, control="control")

    def value_effect(model: UpliftModel) -> np.ndarray:
        raw = model.predict_outcomes(X, outcome="revenue") / np.clip(
            model.predict_outcomes(X, outcome="conversion"), 1e-6, None
        )
        return raw[:, 1] - raw[:, 0]

    # measured: corr 0.93, spread 9.42 free vs 0.012 tied; conversion corr 0.98, sd 0.199 vs 0.202
    assert np.corrcoef(value_effect(free), X[:, 2])[0, 1] > 0.5  # unpenalized: learned
    assert value_effect(tied).std() < 0.2 * value_effect(free).std()  # penalized: flat
    free_conv = free.effect(X, outcome="conversion")[:, 0]
    tied_conv = tied.effect(X, outcome="conversion")[:, 0]
    assert np.corrcoef(tied_conv, X[:, 0])[0, 1] > 0.8  # conversion heterogeneity stays
    assert tied_conv.std() > 0.7 * free_conv.std()
    with pytest.raises(ValueError, match="value_difference must be >= 0"):
        UpliftModel(value_difference=-1.0, **params).fit(X, labels, y, control="control")


def test_the_fast_elu_equals_torchs_to_one_rounding() -> None:
    from uplift.scoring import elu_

    x = torch.cat(
        [
            torch.linspace(-40, 40, 100_001),
            -torch.logspace(-30, 1, 1_001),
            torch.logspace(-30, 1, 1_001),
            torch.tensor([0.0, -0.0, float("inf"), float("-inf")]),
        ]
    )
    expected = torch.nn.functional.elu(x)
    got = elu_(x.clone())
    torch.testing.assert_close(got, expected, atol=6e-8, rtol=0)  # inf and -1 at -inf too
    assert torch.equal(got[x >= 0], x[x >= 0])  # exact on the positive side
    assert torch.isnan(elu_(torch.tensor([float("nan")]))).all()
