"""The shop simulator: determinism, truth versus sampled outcomes, costs, shapes, heterogeneity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.simulation import (
    DEFAULT_INCENTIVES,
    EVENT_CODES,
    NUMERIC_FEATURES,
    OUTCOME_COLUMNS,
    OUTCOMES,
    Incentive,
    Shop,
    simulate_shop,
)

Z99 = stats.norm.ppf(0.995)


@pytest.fixture(scope="module")
def small_shop() -> Shop:
    return simulate_shop(n_users=3_000, seed=7)


@pytest.fixture(scope="module")
def big_experiment() -> tuple[Shop, pd.DataFrame]:
    shop = simulate_shop(n_users=200_000, seed=11)
    return shop, shop.randomized_experiment(seed=5)


def test_same_seed_gives_identical_data_and_another_seed_differs() -> None:
    a, b, c = (simulate_shop(2_000, seed=s) for s in (3, 3, 4))
    pd.testing.assert_frame_equal(a.users, b.users)
    for name in ("p_convert", "order_value", "expected_cost", "expected_margin"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    pd.testing.assert_frame_equal(a.randomized_experiment(seed=1), b.randomized_experiment(seed=1))
    treat = np.arange(2_000) % a.n_arms
    pd.testing.assert_frame_equal(a.sample_outcomes(treat, seed=2), b.sample_outcomes(treat, 2))
    for x, y in zip(a.event_sequences(seed=1), b.event_sequences(seed=1), strict=True):
        np.testing.assert_array_equal(x, y)
    pd.testing.assert_frame_equal(next(iter(a.traffic(days=1))), next(iter(b.traffic(days=1))))

    assert not np.allclose(a.p_convert, c.p_convert)
    assert not a.users["price_sensitivity"].equals(c.users["price_sensitivity"])
    assert not a.randomized_experiment(seed=1).equals(a.randomized_experiment(seed=2))


@pytest.mark.parametrize("outcome", ["conversion", "revenue", "margin", "retention"])
def test_randomized_difference_lies_in_99_interval_of_true_effect(big_experiment, outcome) -> None:
    shop, df = big_experiment
    column = {"conversion": "converted", "retention": "retained_30d"}.get(outcome, outcome)
    truth = shop.true_effect(outcome).mean(axis=0)
    control = df.loc[df["treatment"] == "none", column].to_numpy(dtype=float)
    for j, key in enumerate(shop.arms[1:]):
        treated = df.loc[df["treatment"] == key, column].to_numpy(dtype=float)
        diff = treated.mean() - control.mean()
        se = np.sqrt(treated.var(ddof=1) / len(treated) + control.var(ddof=1) / len(control))
        assert abs(diff - truth[j]) <= Z99 * se, (key, outcome, diff, truth[j], se)
        # the test has power: a truth shifted by 4 standard errors would be rejected
        assert abs(diff - (truth[j] + 4 * se)) > Z99 * se


def test_sampled_outcomes_average_to_the_expected_outcomes(big_experiment) -> None:
    shop, _ = big_experiment
    columns = {
        "conversion": "converted",
        "revenue": "revenue",
        "margin": "margin",
        "retention": "retained_30d",
        "cost": "incentive_cost",
        "orders": "orders",
    }
    for k, key in enumerate(shop.arms):
        out = shop.sample_outcomes(np.full(shop.n_users, k), seed=100 + k)
        for outcome, column in columns.items():
            x = out[column].to_numpy(dtype=float)
            expected = shop.expected(outcome)[:, k].mean()
            se = x.std(ddof=1) / np.sqrt(len(x))
            assert abs(x.mean() - expected) <= Z99 * se + 1e-12, (key, outcome, x.mean(), expected)


def test_realized_costs_follow_each_cost_model(big_experiment) -> None:
    shop, df = big_experiment
    arm = df.groupby("treatment")
    d10, d20 = arm.get_group("discount_10"), arm.get_group("discount_20")
    np.testing.assert_allclose(d10["incentive_cost"], 0.10 * d10["revenue"], rtol=1e-12)
    np.testing.assert_allclose(d20["incentive_cost"], 0.20 * d20["revenue"], rtol=1e-12)
    assert (arm.get_group("none")["incentive_cost"] == 0).all()
    gift = arm.get_group("free_gift")
    np.testing.assert_array_equal(gift["incentive_cost"], 4.0 * gift["converted"])
    coupon = arm.get_group("coupon_5")
    assert set(np.unique(coupon["incentive_cost"])) == {0.0, 5.0}
    assert (coupon.loc[coupon["incentive_cost"] > 0, "revenue"] >= 40.0).all()
    shipping = arm.get_group("free_shipping")
    fee = np.where(shipping["region"] == "international", 12.95, 5.95)
    waived = shipping["incentive_cost"] / fee
    np.testing.assert_allclose(waived, np.round(waived), atol=1e-9)
    assert (waived <= shipping["orders"]).all()
    # non-converters never cost anything; margin never exceeds revenue
    assert (df.loc[df["converted"] == 0, ["incentive_cost", "revenue", "orders"]] == 0).all().all()
    assert (df["margin"] <= df["revenue"]).all()
    # realized mean cost per arm matches the expected cost within 99%
    for j, key in enumerate(shop.arms):
        rows = df["treatment"] == key
        cost = df.loc[rows, "incentive_cost"].to_numpy()
        index = df.loc[rows, "unit_id"].str[1:].astype(int).to_numpy()
        expected = shop.expected_cost[index, j].mean()
        assert abs(cost.mean() - expected) <= Z99 * max(cost.std(ddof=1), 1e-12) / np.sqrt(
            len(cost)
        )


def test_shapes_dtypes_and_arms(small_shop: Shop) -> None:
    shop, n = small_shop, small_shop.n_users
    assert shop.arms == ["none", *(i.key for i in DEFAULT_INCENTIVES)]
    assert shop.incentives == DEFAULT_INCENTIVES
    k = len(shop.arms)
    for name in ("p_convert", "order_value", "expected_cost", "expected_margin"):
        arr = getattr(shop, name)
        assert arr.shape == (n, k) and arr.dtype == np.float64, name
        assert np.isfinite(arr).all(), name
        assert not arr.flags.writeable, name
    assert ((shop.p_convert > 0) & (shop.p_convert < 1)).all()
    assert (shop.order_value > 0).all()
    assert (shop.expected_cost[:, 0] == 0).all() and (shop.expected_cost[:, 1:] > 0).all()
    for outcome in OUTCOMES:
        assert shop.true_effect(outcome).shape == (n, k - 1)
    with pytest.raises(ValueError, match="use one of"):
        shop.true_effect("happiness")
    picked = shop.users["unit_id"].iloc[[5, 0, 2_999]]
    np.testing.assert_array_equal(shop.rows(picked), [5, 0, 2_999])
    with pytest.raises(ValueError, match="not users of this shop"):
        shop.rows(["u003000", "x1"])

    users = shop.users
    assert users["unit_id"].is_unique and users["unit_id"].iloc[123] == "u000123"
    for col in ("recency_days", "frequency", "tenure_days", "sessions_30d"):
        assert pd.api.types.is_integer_dtype(users[col]) and (users[col] >= 0).all(), col
    for col in ("price_sensitivity", "cart_abandon_rate", "promo_share"):
        assert users[col].between(0, 1).all(), col
    affinity = users.filter(like="affinity_")
    assert affinity.shape[1] == 5 and np.allclose(affinity.sum(axis=1), 1.0)
    for col in ("channel", "device", "region"):
        assert isinstance(users[col].dtype, pd.CategoricalDtype), col

    out = shop.sample_outcomes(np.zeros(n, dtype=np.int64), seed=0)
    assert list(out.columns) == list(OUTCOME_COLUMNS) and len(out) == n
    assert set(np.unique(out["converted"])) <= {0, 1} and set(np.unique(out["retained_30d"])) <= {
        0,
        1,
    }
    assert out["orders"].dtype == np.int64 and (out["orders"] >= out["converted"]).all()
    for col in ("revenue", "margin", "incentive_cost"):
        assert out[col].dtype == np.float64, col
    one = simulate_shop(n_users=1, seed=1).sample_outcomes(np.array([0]))  # no order at all
    assert one.dtypes.equals(out.dtypes)
    with pytest.raises(ValueError, match="treatment"):
        shop.sample_outcomes(np.zeros(n - 1, dtype=np.int64))

    codes, days_ago = shop.event_sequences(max_len=12, seed=0)
    assert codes.shape == days_ago.shape == (n, 12) and codes.dtype == np.int8
    pad = codes == 0
    assert not pad[:, -1].any()  # left padding: the most recent event is last
    assert (np.diff(pad.astype(int), axis=1) <= 0).all()
    assert (days_ago[pad] == 0).all() and (np.diff(np.where(pad, 1e9, days_ago), axis=1) <= 0).all()


def test_heterogeneous_effects_include_negative_ones_and_are_learnable() -> None:
    shop = simulate_shop(n_users=10_000, seed=2)
    effect = shop.true_effect("conversion")
    assert (effect < 0).any(axis=0).any() and (effect > 0).any(axis=0).all()
    assert (effect < 0).mean() > 0.05  # a sizeable share, not a rounding artefact
    assert (shop.true_effect("margin") < 0).any(axis=0).all()
    assert (shop.true_effect("margin") > 0).any(axis=0).all()

    u = shop.users
    X = np.column_stack(
        [
            u["price_sensitivity"],
            u["cart_abandon_rate"],
            u["promo_share"],
            np.log1p(u["frequency"]),
            np.log1p(u["recency_days"]),
            np.log1p(u["avg_order_value"]),
            u["affinity_beauty"],
            u["device"] == "mobile",
            u["region"] == "international",
        ]
    ).astype(float)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    upper = np.triu_indices(X.shape[1])
    linear = np.column_stack([np.ones(len(X)), X])
    quadratic = np.column_stack([linear, X[:, upper[0]] * X[:, upper[1]]])
    train, test = slice(0, 7_000), slice(7_000, None)

    for j, key in enumerate(shop.arms[1:]):
        y = effect[:, j]

        def r2(design: np.ndarray, y: np.ndarray = y) -> float:
            coef, *_ = np.linalg.lstsq(design[train], y[train], rcond=None)
            return 1 - np.mean((y[test] - design[test] @ coef) ** 2) / np.var(y[test])

        lin, quad = r2(linear), r2(quadratic)
        # the features explain the effect (a model beats a constant), but not linearly
        assert quad > 0.15 and lin < 0.9 and quad > lin + 0.05, (key, lin, quad)


def test_traffic_respects_assign_and_yields_unique_event_ids() -> None:
    shop = simulate_shop(n_users=4_000, seed=9)
    calls: list[np.ndarray] = []

    def assign(unit_ids: np.ndarray) -> list[str]:
        calls.append(np.asarray(unit_ids))
        return ["discount_20" if int(u[1:]) % 3 == 0 else "none" for u in unit_ids]

    frames = list(shop.traffic(days=10, seed=1, assign=assign))
    assert len(frames) == 10
    events = pd.concat(frames, ignore_index=True)
    assert events["event_id"].is_unique
    assert set(events["name"]) == {"exposure", "view", "add_to_cart", "order"}
    assert [f["day"].unique().tolist() for f in frames] == [[d] for d in range(10)]
    assert str(events["timestamp"].dt.tz) == "UTC"
    assert events["timestamp"].is_monotonic_increasing
    start = pd.Timestamp("2026-01-05", tz="UTC")  # the documented default start
    assert ((events["timestamp"] - start) // pd.Timedelta(days=1) == events["day"]).all()

    called = np.concatenate(calls)
    assert len(called) == len(set(called))  # each unit is assigned once, at first exposure
    exposures = events[events["name"] == "exposure"]
    assert sorted(exposures["unit_id"]) == sorted(called)
    expected_arm = np.where(events["unit_id"].str[1:].astype(int) % 3 == 0, "discount_20", "none")
    assert (events["arm"] == expected_arm).all()
    first_seen = events.groupby("unit_id")["timestamp"].min()
    exposed_at = exposures.set_index("unit_id")["timestamp"]
    assert (first_seen.loc[exposed_at.index] == exposed_at).all()
    orders = events[events["name"] == "order"]
    treated = orders["arm"] == "discount_20"
    np.testing.assert_allclose(
        orders.loc[treated, "incentive_cost"], 0.2 * orders.loc[treated, "value"]
    )
    assert (orders.loc[~treated, "incentive_cost"] == 0).all()

    with pytest.raises(ValueError, match="one arm key per unit id"):
        next(iter(shop.traffic(days=1, assign=lambda ids: ["none"])))
    with pytest.raises(ValueError, match="unknown arm keys"):
        next(iter(shop.traffic(days=1, assign=lambda ids: ["bogus"] * len(ids))))


def test_traffic_conversion_matches_truth() -> None:
    shop = simulate_shop(n_users=20_000, seed=4)
    frames = list(shop.traffic(days=40, seed=2, enroll_days=10))
    events = pd.concat(frames, ignore_index=True)
    exposures = events[events["name"] == "exposure"]
    assert exposures["day"].max() == 9 and events["day"].max() == 39
    converted = set(events.loc[events["name"] == "order", "unit_id"])
    rows = shop.users.index[shop.users["unit_id"].isin(exposures["unit_id"])]
    arm = shop.arm_index(exposures.set_index("unit_id").loc[shop.users["unit_id"][rows], "arm"])
    observed = shop.users["unit_id"][rows].isin(converted).to_numpy(dtype=float)
    p = shop.p_convert[rows, arm]
    # sum of independent Bernoullis: mean p, variance sum p(1-p)
    assert abs(observed.sum() - p.sum()) <= Z99 * np.sqrt((p * (1 - p)).sum())


def test_incentive_validation_and_round_trip() -> None:
    inc = Incentive(key="pct15", name="15%", kind="percent_discount", params={"percent": 15})
    assert inc.cost_model == "percent_of_gross"
    assert Incentive.from_dict(inc.to_dict()) == inc
    coupon = Incentive(key="c10", name="$10", kind="fixed_coupon", params={"amount": 10})
    assert coupon.params == {"amount": 10, "min_basket": 0.0}
    with pytest.raises(ValueError, match="kind"):
        Incentive(key="x", name="x", kind="cashback", params={})
    with pytest.raises(ValueError, match="missing"):
        Incentive(key="x", name="x", kind="percent_discount", params={})
    with pytest.raises(ValueError, match="percent"):
        Incentive(key="x", name="x", kind="percent_discount", params={"percent": 150})
    with pytest.raises(ValueError, match="reserved"):
        Incentive(key="none", name="x", kind="gift", params={"unit_cost": 1, "perceived_value": 2})
    with pytest.raises(ValueError, match="cost_model"):
        Incentive(
            key="x",
            name="x",
            kind="gift",
            params={"unit_cost": 1, "perceived_value": 2},
            cost_model="percent_of_gross",
        )


def test_custom_catalog_with_bundle() -> None:
    bundle = Incentive(key="bundle_15", name="2 for 15% off", kind="bundle", params={"percent": 15})
    shop = simulate_shop(n_users=5_000, seed=1, incentives=[bundle])
    assert shop.arms == ["none", "bundle_15"]
    out = shop.randomized_experiment(seed=0)
    rows = out[(out["treatment"] == "bundle_15") & (out["incentive_cost"] > 0)]
    assert len(rows) > 0 and (rows["incentive_cost"] <= 0.15 * rows["revenue"] + 1e-9).all()
    assert shop.true_effect("revenue").mean() > 0
    # realized revenue and cost of the treated match their expectations within 99%
    treated = out["treatment"] == "bundle_15"
    index = out.loc[treated, "unit_id"].str[1:].astype(int).to_numpy()
    for column, outcome in (("revenue", "revenue"), ("incentive_cost", "cost")):
        realized = out.loc[treated, column].to_numpy()
        expected = shop.expected(outcome)[index, 1].mean()
        se = realized.std(ddof=1) / np.sqrt(len(realized))
        assert abs(realized.mean() - expected) <= Z99 * se, (column, realized.mean(), expected)
    with pytest.raises(ValueError, match="distinct"):
        simulate_shop(n_users=10, incentives=[bundle, bundle])


def test_sequences_measure_hidden_deal_seeking_beyond_the_features() -> None:
    shop = simulate_shop(n_users=20_000, seed=6)
    codes, _ = shop.event_sequences(max_len=30, seed=0)
    events = (codes > 0).sum(axis=1)
    promo = (codes == EVENT_CODES["promo_view"]).sum(axis=1) / events
    hidden = shop.latent_traits()["deal_seeking"].to_numpy()
    no_orders = shop.users["frequency"].to_numpy() == 0  # promo_share says nothing about them
    rho = stats.spearmanr(promo[no_orders], hidden[no_orders]).statistic
    assert rho > 0.2, rho
    # orders in the history follow from checkouts: never more orders than checkouts + 1
    orders = (codes == EVENT_CODES["order"]).sum(axis=1)
    checkouts = (codes == EVENT_CODES["begin_checkout"]).sum(axis=1)
    assert (orders <= checkouts + 1).all()


def test_the_averaged_taste_is_the_integral_over_the_taste_term(small_shop: Shop) -> None:
    from scipy import integrate
    from scipy.special import expit, logit

    from experiments.simulation.response import TASTE_SD

    shop = small_shop
    averaged = shop.p_convert_averaged
    np.testing.assert_array_equal(averaged[:, 0], shop.p_convert[:, 0])  # the control has no ε
    assert (shop.taste[:, 0] == 0).all() and 0.14 < shop.taste[:, 1:].std() < 0.16
    structural = logit(shop.p_convert) - shop.taste
    for i in (0, 17, 2_999):
        for k in range(1, shop.n_arms):
            reference, _ = integrate.quad(
                lambda z, s=structural[i, k]: expit(s + TASTE_SD * z) * stats.norm.pdf(z), -12, 12
            )
            assert averaged[i, k] == pytest.approx(reference, abs=1e-10)
    # every outcome is affine in P(convert), so the ε average passes straight through it
    np.testing.assert_allclose(
        shop.expected("revenue", taste="averaged"), averaged * shop.order_value, rtol=1e-12
    )
    cost_if_converted = shop.expected_cost / shop.p_convert
    np.testing.assert_allclose(
        shop.expected("cost", taste="averaged"), averaged * cost_if_converted, rtol=1e-12
    )
    with pytest.raises(ValueError, match="taste 'mean' is unknown; use one of drawn, averaged"):
        shop.true_effect("conversion", taste="mean")


def test_the_averaged_effect_removes_only_noise_that_no_feature_carries(big_experiment) -> None:
    shop, _ = big_experiment
    n = shop.n_users
    numeric = shop.users[list(NUMERIC_FEATURES)].to_numpy(dtype=float)
    for outcome in ("conversion", "revenue", "margin", "retention"):
        residual = shop.true_effect(outcome) - shop.true_effect(outcome, taste="averaged")
        se = residual.std(axis=0) / np.sqrt(n)
        assert (np.abs(residual.mean(axis=0)) < 4.5 * se).all(), outcome
        corr = np.corrcoef(np.column_stack([residual, numeric]), rowvar=False)
        across = corr[: residual.shape[1], residual.shape[1] :]
        assert np.abs(across).max() < 4.5 / np.sqrt(n), (outcome, np.abs(across).max())
        # and it is a large part of the individual effect's spread: what PEHE must not count
        assert (residual.std(axis=0) > 0.1 * shop.true_effect(outcome).std(axis=0)).all()
