"""uplift.metrics against hand-computed values and scikit-uplift 0.5.1 golden numbers."""

from __future__ import annotations

import numpy as np
import pytest

from uplift import metrics

# Drawn with numpy default_rng(42) (scores rounded to 0.1 so that ties occur); the expected numbers
# were computed with scikit-uplift 0.5.1 (sklift.metrics), an independent implementation.
Y = [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0,
     0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0]  # fmt: skip
T = [0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0,
     1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1]  # fmt: skip
U = [-0.2, -0.7, 1.2, -0.2, -0.4, -0.4, 0.5, 0.4, 0.4, 0.4, 2.1, -0.4, -0.5, -0.8, 0.6, 1.1,
     -0.1, -0.8, -0.8, 0.7, 0.7, 0.5, -0.7, 0.2, 0.1, 0.2, 0.9, 0.2, 0.7, 0.1, 0.3, 0.6, -1.5,
     -0.3, -0.5, -0.6, -0.3, 1.5, -0.9, 1.0]  # fmt: skip


def test_qini_curve_by_hand() -> None:
    # sorted by score: (y, t) = (1,1), (0,1), (1,0), (0,0)
    x, q = metrics.qini_curve([1, 0, 1, 0], [4, 3, 2, 1], [1, 1, 0, 0])
    np.testing.assert_allclose(x, [0, 1, 2, 3, 4])
    # Y_T − Y_C·N_T/N_C with N_C = 0 read as 0: 1, 1, 1 − 1·2/1, 1 − 1·2/2
    np.testing.assert_allclose(q, [0, 1, 1, -1, 0])


def test_uplift_curve_by_hand_with_ties() -> None:
    # the two tied top scores form one threshold
    x, u = metrics.uplift_curve([1, 0, 1, 0], [2, 2, 1, 0], [1, 0, 1, 0])
    np.testing.assert_allclose(x, [0, 2, 3, 4])
    np.testing.assert_allclose(u, [0, (1 - 0) * 2, (1 - 0) * 3, (1 - 0) * 4])


@pytest.mark.parametrize(
    ("func", "kwargs", "expected"),
    [
        (metrics.qini_auc_score, {}, -0.1748807786032051),
        (metrics.qini_auc_score, {"negative_effect": False}, -1.4039040282312851),
        (metrics.uplift_auc_score, {}, -0.18102155551974491),
        (metrics.uplift_at_k, {"k": 0.3, "strategy": "overall"}, -0.25),
        (metrics.uplift_at_k, {"k": 0.3, "strategy": "by_group"}, -0.43333333333333335),
    ],
)
def test_matches_scikit_uplift(func, kwargs, expected) -> None:
    assert func(Y, U, T, **kwargs) == pytest.approx(expected, rel=1e-12)


def test_perfect_ranking_scores_one() -> None:
    y, t = np.array(Y), np.array(T)
    assert metrics.qini_auc_score(y, y * t - y * (1 - t), t) == pytest.approx(1.0)


def test_per_arm_restricts_rows_to_control_and_arm() -> None:
    labels = np.array(["c", "a", "b", "a", "c", "b", "a", "c"])
    y = np.array([0, 1, 1, 0, 1, 0, 1, 0])
    effects = np.column_stack([np.arange(8.0), -np.arange(8.0)])
    got = metrics.per_arm(metrics.uplift_at_k, y, effects, labels, "c", ["a", "b"], k=0.5)
    rows_a = np.isin(labels, ["a", "c"])
    want_a = metrics.uplift_at_k(y[rows_a], effects[rows_a, 0], (labels[rows_a] == "a"), k=0.5)
    assert got["a"] == want_a
    assert set(got) == {"a", "b"}


def test_pehe_and_ate_error_by_hand() -> None:
    true = np.array([[1.0, 0.0], [3.0, 0.0]])
    pred = np.array([[2.0, 1.0], [3.0, -1.0]])
    np.testing.assert_allclose(metrics.pehe(true, pred), [np.sqrt(0.5), 1.0])
    np.testing.assert_allclose(metrics.ate_error(true, pred), [0.5, 0.0])
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.pehe(true, pred[:, :1])


def test_policy_value_ipw_by_hand() -> None:
    # arms c (p=1/2), a (p=1/4), b (p=1/4); the policy gives u0,u1 → a, u2 → b, u3 → c
    labels = ["a", "a", "c", "c"]
    y = [1.0, 0.0, 1.0, 3.0]
    effects = np.array([[1.0, 0.5], [2.0, -1.0], [0.1, 0.2], [-1.0, -2.0]])
    value = metrics.policy_value_ipw(
        y, labels, effects, ["a", "b"], "c", propensity={"c": 0.5, "a": 0.25, "b": 0.25}
    )
    # matches: u0 (a), u1 (a), u3 (c): terms 1/0.25, 0/0.25, 0, 3/0.5
    assert value.value == pytest.approx((4.0 + 0.0 + 0.0 + 6.0) / 4)
    assert value.snips == pytest.approx(10.0 / (4 + 4 + 2))
    assert value.share_treated == {"c": 0.25, "a": 0.5, "b": 0.25}


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="one length"):
        metrics.qini_auc_score([0, 1], [0.1], [0, 1])
    with pytest.raises(ValueError, match="per_arm"):
        metrics.qini_auc_score([0, 1, 1], [0.1, 0.2, 0.3], [0, 1, 2])
