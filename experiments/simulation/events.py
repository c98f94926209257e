"""Behaviour: past event sequences per user, and live traffic emitted day by day.

Layer: ``experiments.simulation``. ``event_sequences`` gives a sequence encoder the recent history
of every user (views, searches, promo-page views, carts, checkouts, orders with their days);
``traffic`` runs an experiment over simulated days: it asks the caller's ``assign`` which arm each
newly exposed user gets, then emits exposures, views, carts and orders whose conversion and order
values follow exactly the shop's truth for that arm. Equations: ``docs/simulator.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from experiments.simulation.shop import Shop

EVENT_CODES: dict[str, int] = {
    "pad": 0,
    "view": 1,
    "search": 2,
    "promo_view": 3,
    "add_to_cart": 4,
    "begin_checkout": 5,
    "order": 6,
}
TRAFFIC_EVENTS: tuple[str, ...] = ("exposure", "view", "add_to_cart", "order")
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW_DAYS = 30  # conversion window that p_convert describes
FIRST_ORDER_DELAY_DAYS = 5.0  # mean delay from exposure to first order (exponential, truncated)


def event_sequences(
    shop: Shop, max_len: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(codes int8 (n, max_len), days_ago float32 (n, max_len)); left-padded, oldest first.

    A per-user Markov chain over event types: browsing
    (view/search/promo_view, promo share driven by the hidden deal-seeking trait) leads to a cart
    with a rate rising with engagement; a cart leads to checkout half the time; a checkout ends in
    an order with probability 1 - cart_abandon_rate.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1; got {max_len}")
    users = shop.users
    n = len(users)
    pop = shop._pop
    sessions = users["sessions_30d"].to_numpy(dtype=float)
    abandon = users["cart_abandon_rate"].to_numpy()
    cart_rate = 0.08 + 0.22 / (1 + np.exp(-pop.engagement))
    promo_rate = 0.05 + 0.35 * pop.deal_seeking
    length = np.clip(
        rng.poisson(1.5 + 2.5 * sessions + 2 * users["frequency"].to_numpy()), 1, max_len
    )

    # Run the chain forward in time for max_len steps, then keep each user's last `length` events.
    codes = np.zeros((n, max_len), dtype=np.int8)
    state = np.full(n, EVENT_CODES["view"], dtype=np.int8)
    for j in range(max_len):
        u = rng.random((3, n))
        browse = np.where(
            u[0] < promo_rate,
            EVENT_CODES["promo_view"],
            np.where(u[0] < promo_rate + 0.2, EVENT_CODES["search"], EVENT_CODES["view"]),
        )
        nxt = np.where(u[1] < cart_rate, EVENT_CODES["add_to_cart"], browse)
        cart = state == EVENT_CODES["add_to_cart"]
        nxt = np.where(cart & (u[2] < 0.5), EVENT_CODES["begin_checkout"], nxt)
        checkout = state == EVENT_CODES["begin_checkout"]
        nxt = np.where(checkout, np.where(u[2] < 1 - abandon, EVENT_CODES["order"], browse), nxt)
        state = nxt.astype(np.int8)
        codes[:, j] = state
    keep = np.arange(max_len)[None, :] >= (max_len - length)[:, None]
    codes[~keep] = 0

    # Gaps between consecutive events: 70% stay in the session (minutes), the rest jump to
    # another session; the most recent event lies an exponential time before now.
    session_gap = 30.0 / (sessions + 1.0)
    same_session = rng.random((n, max_len)) < 0.7
    gaps = np.where(
        same_session,
        rng.exponential(0.01, (n, max_len)),
        rng.exponential(1.0, (n, max_len)) * session_gap[:, None],
    )
    gaps[:, -1] = rng.exponential(1.0, n) * session_gap  # last event to now
    days_ago = np.cumsum(gaps[:, ::-1], axis=1)[:, ::-1]
    days_ago[~keep] = 0.0
    return codes, days_ago.astype(np.float32)


def _visit_probability(shop: Shop, visit_rate: float) -> np.ndarray:
    sessions = shop.users["sessions_30d"].to_numpy(dtype=float)
    return np.clip(visit_rate * (0.01 + sessions / 30.0), 0.0, 0.9)


def traffic(
    shop: Shop,
    days: int,
    rng: np.random.Generator,
    seed: int,
    assign: Callable[[np.ndarray], Sequence[str]] | None,
    start: datetime | None,
    visit_rate: float,
    enroll_days: int | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield one DataFrame of events per simulated day.

    Each day a user visits with probability ``visit_rate * (0.01 + sessions_30d / 30)`` (at most
    0.9). On the first visit the user is exposed and ``assign(unit_ids)`` (called once per day with
    that day's newly exposed users; default: uniform over all arms) picks the arm. The user then
    converts within 30 days with probability ``p_convert[user, arm]``; the first order comes after
    an exponential delay (mean 5 days, truncated to the window), later orders uniformly in the rest
    of the window, values and incentive costs drawn exactly as in ``Shop.sample_outcomes``.
    Orders due after the last simulated day are not emitted. With ``enroll_days`` set, new users
    are exposed only on days ``0 .. enroll_days - 1``; later days follow up the exposed users only
    (their visits and orders), so that every enrolled user can see a full 30-day window.

    Columns: event_id (unique str), unit_id, name (exposure/view/add_to_cart/order), value (order:
    gross revenue; add_to_cart: cart value; else 0), timestamp (UTC), day, arm, incentive_cost
    and margin (order rows; 0 elsewhere).
    """
    if days < 1:
        raise ValueError(f"days must be >= 1; got {days}")
    if visit_rate <= 0:
        raise ValueError(f"visit_rate must be > 0; got {visit_rate}")
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    enroll_days = days if enroll_days is None else int(enroll_days)
    if enroll_days < 1:
        raise ValueError(f"enroll_days must be >= 1; got {enroll_days}")
    when = pd.Timestamp(start).tz_convert(UTC)
    return _traffic_days(shop, days, rng, seed, assign, when, visit_rate, enroll_days)


def _uniform_assign(shop: Shop, rng: np.random.Generator) -> Callable[[np.ndarray], list[str]]:
    def assign(unit_ids: np.ndarray) -> list[str]:
        return list(
            np.asarray(shop.arms, dtype=object)[rng.integers(shop.n_arms, size=len(unit_ids))]
        )

    return assign


def _traffic_days(
    shop: Shop,
    days: int,
    rng: np.random.Generator,
    seed: int,
    assign: Callable[[np.ndarray], Sequence[str]] | None,
    start: pd.Timestamp,
    visit_rate: float,
    enroll_days: int,
) -> Iterator[pd.DataFrame]:
    n = shop.n_users
    ids = shop.users["unit_id"].to_numpy()
    assign = (
        _uniform_assign(shop, np.random.default_rng(rng.integers(2**63)))
        if assign is None
        else assign
    )
    visit_p = _visit_probability(shop, visit_rate)
    arm_of = np.full(n, -1, dtype=np.int64)
    exposed_t = np.full(n, np.inf)
    gm = shop._gm
    arm_keys = np.asarray(shop.arms, dtype=object)
    # pending orders: user row, absolute day (float), value, cost
    pend_row = np.zeros(0, dtype=np.int64)
    pend_t = np.zeros(0)
    pend_value = np.zeros(0)
    pend_cost = np.zeros(0)
    prefix = f"s{shop.seed}t{seed}"

    for day in range(days):
        visiting = rng.random(n) < visit_p
        if day >= enroll_days:
            visiting &= arm_of >= 0
        visitors = np.flatnonzero(visiting)
        visit_t = day + rng.uniform(0.25, 0.95, len(visitors))
        new_mask = arm_of[visitors] < 0
        new_rows, new_t = visitors[new_mask], visit_t[new_mask]
        if len(new_rows):
            returned = assign(ids[new_rows])
            keys = [returned] if isinstance(returned, str) else list(returned)
            if len(keys) != len(new_rows):
                raise ValueError(
                    f"assign returned {len(keys)} arm keys for {len(new_rows)} unit ids; "
                    "it must return one arm key per unit id"
                )
            arms = shop.arm_index(keys)
            arm_of[new_rows] = arms
            exposed_t[new_rows] = new_t
            frame, orders = shop._sample(new_rows, arms, rng)
            owner = orders.owner
            first = np.ones(len(owner), dtype=bool)
            first[1:] = owner[1:] != owner[:-1]
            delay = np.minimum(
                rng.exponential(FIRST_ORDER_DELAY_DAYS, len(owner)), WINDOW_DAYS - 0.01
            )
            first_delay = np.zeros(len(new_rows))
            first_delay[owner[first]] = delay[first]
            later = first_delay[owner] + rng.random(len(owner)) * (WINDOW_DAYS - first_delay[owner])
            t = new_t[owner] + np.where(first, delay, later)
            pend_row = np.concatenate([pend_row, new_rows[owner]])
            pend_t = np.concatenate([pend_t, t])
            pend_value = np.concatenate([pend_value, orders.value])
            pend_cost = np.concatenate([pend_cost, orders.cost])

        due = pend_t < day + 1
        o_row, o_t, o_value, o_cost = pend_row[due], pend_t[due], pend_value[due], pend_cost[due]
        pend_row, pend_t = pend_row[~due], pend_t[~due]
        pend_value, pend_cost = pend_value[~due], pend_cost[~due]
        # the cart precedes its order, but neither the user's exposure nor the day's start
        lead = rng.uniform(0.001, 0.02, len(o_t))
        cart_t = np.maximum(np.maximum(o_t - lead, exposed_t[o_row]), day)

        n_views = 1 + rng.poisson(2.0, len(visitors))
        view_row = np.repeat(visitors, n_views)
        view_t = np.repeat(visit_t, n_views) + rng.uniform(0.0001, 0.04, len(view_row))
        view_t = np.minimum(view_t, day + 0.9999)

        rows = np.concatenate([new_rows, view_row, o_row, o_row])
        names = np.concatenate(
            [
                np.full(len(new_rows), "exposure", dtype=object),
                np.full(len(view_row), "view", dtype=object),
                np.full(len(o_row), "add_to_cart", dtype=object),
                np.full(len(o_row), "order", dtype=object),
            ]
        )
        t = np.concatenate([new_t, view_t, cart_t, o_t])
        value = np.concatenate([np.zeros(len(new_rows) + len(view_row)), o_value, o_value])
        cost = np.concatenate([np.zeros(len(new_rows) + len(view_row) + len(o_row)), o_cost])
        is_order = names == "order"
        margin = np.where(is_order, gm[rows] * value - cost, 0.0)
        order = np.lexsort((np.arange(len(t)), t))
        rows, names, t = rows[order], names[order], t[order]
        value, cost, margin = value[order], cost[order], margin[order]
        arm = arm_of[rows]
        frame = pd.DataFrame(
            {
                "event_id": np.char.add(
                    f"{prefix}-d{day:04d}-", np.arange(len(rows)).astype(str)
                ).astype(object),
                "unit_id": ids[rows],
                "name": names,
                "value": value,
                "timestamp": start + pd.to_timedelta(t, unit="D"),
                "day": np.full(len(rows), day, dtype=np.int64),
                "arm": np.where(arm >= 0, arm_keys[np.maximum(arm, 0)], None),
                "incentive_cost": cost,
                "margin": margin,
            }
        )
        yield frame
