"""``UpliftModel``: the deep multi-treatment uplift estimator (uplift layer, public API).

scikit-learn conventions, EconML vocabulary::

    model = UpliftModel(random_state=0).fit(X, treatment, y, control="control")
    tau = model.effect(X_new)            # (n_users, n_incentives), columns in ``incentives_`` order
    mu = model.predict_outcomes(X_new)   # (n_users, n_incentives + 1), column 0 = control
    lo, hi = model.effect_interval(X_new, alpha=0.05)   # needs n_estimators >= 2
    model.save(path); same = UpliftModel.load(path)

``incentives_`` are the non-control treatment labels, sorted (by their string form when the labels
are of mixed types); ``treatments_`` is ``[control, *incentives_]``. Inputs are validated in ``fit``
(see ``uplift.features`` for categorical handling: unseen levels and missing values map to an
explicit 'unknown' embedding row; NaN numeric features are an error). ``y`` is 1-D (binary,
continuous or zero-inflated revenue) or 2-D (conversion, revenue) for joint training; with 2-D y,
``effect(X, outcome="revenue")`` picks the revenue effect (the default is the first target).
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from uplift.persistence import load_model, save_model


class UpliftModel(BaseEstimator):
    """TARNet/DragonNet/SNet-style multi-arm uplift network with a causal validation criterion.

    Parameters (all optional; the defaults need no tuning):
        architecture: a name from ``uplift.nets.available()`` ("dragonnet", "snet", "tarnet")
            or "auto": "tarnet" on randomized data (Hotelling's test finds the arms' covariates
            balanced); on observational data (imbalanced covariates) "snet" up to 20,000 users
            (shared and private representations; on IHDP it beats TARNet and DragonNet, see
            ``uplift.small_data``) and "dragonnet" above (its propensity head and targeted
            regularization adjust for confounding).
        representation, head: hidden widths of the shared representation and of each arm's head;
            None picks (200, 200, 200) / (100, 100) up to 20,000 users (CFRNet's IHDP sizes) and
            (128, 64) / (32,) above, which keeps 1M-user fits and scoring fast on a CPU.
        head_difference: weight of the penalty on the squared distance between each incentive
            head's parameters and the control head's (the incentive heads start as copies of
            it), which shrinks the estimated effects' heterogeneity, not the outcomes; None is 0
            (0.1 above 20,000 users until session 3, chosen on a mis-scored benchmark).
        value_difference: zero-inflated revenue and funnel outcomes only: weight of the penalty
            on the spread, over users, of each incentive's order-value output minus the
            control's (the value is learned from converters alone, so per-arm value heads are
            mostly noise); None picks ``uplift.fitting.VALUE_DIFFERENCE`` (10); for a funnel it
            is the spread of each incentive's conversion-given-visit logit minus the control's.
            Conversion effects (and a funnel's visit effects) are not penalized.
        outcome: "auto" (binary if y is 0/1 else continuous), "binary", "continuous",
            "zero_inflated" (revenue = conversion × order value), "funnel" (a 2-D 0/1 y =
            (visit, conversion), a conversion only after a visit; "auto" never picks it):
            conversion = P(visit) × P(conversion | visit), targets "visit", "conversion".
        balance: "auto", None, "mmd" or "wasserstein" (CFR representation balancing) and its
            ``balance_weight``: "auto" is "mmd" up to 20,000 users when the arms' covariates
            are detectably imbalanced (Hotelling's test; randomized data are not), else None;
            a None weight is 0.3 up to 20,000 users and 1.0 above (see ``uplift.small_data``).
        alpha, beta: DragonNet propensity and targeted-regularization weights.
        criterion: "dr" (doubly-robust pseudo-outcome loss on the validation split), "factual"
            (validation factual loss) or "auto": "dr" when every arm has at least 1,000
            validation users, else "factual" (on IHDP's ~200-user validation splits the DR loss is
            too noisy to stop on: reps 1-10 gave median sqrt(PEHE) 1.06 with "dr", 0.74 with
            "factual").
        n_estimators: members of the deep ensemble (>= 2 enables ``effect_interval``); None
            picks 5 up to 100,000 users and 1 above. An ensemble is cross-fitted: member j
            early-stops on fold j of n_estimators arm-stratified folds and trains on the rest
            (``validation_fraction`` is then unused); see ``uplift.small_data``.
        sequence_encoder: None, "gru" or "transformer" over ``sequences=`` (n, L) int event codes
            (0 = padding; codes not seen in training are read as padding).
        max_epochs, batch_size, patience: None picks them from the data size.
        weight_decay: None picks 1e-3 up to 20,000 users, as an L2 term in Adam's gradient
            (CFRNet, catenets), and 1e-4 above, decoupled (AdamW); an explicit value keeps the
            regime's form.
        device: "auto" (CUDA if present, bf16 autocast there, else CPU), "cpu" or "cuda".
        verbose: show a tqdm progress bar during fit.
    """

    def __init__(
        self,
        *,
        architecture: str = "auto",
        representation: tuple[int, ...] | None = None,
        head: tuple[int, ...] | None = None,
        dropout: float = 0.0,
        head_difference: float | None = None,
        value_difference: float | None = None,
        outcome: str = "auto",
        balance: str | None = "auto",
        balance_weight: float | None = None,
        alpha: float = 1.0,
        beta: float = 1.0,
        criterion: str = "auto",
        n_estimators: int | None = None,
        sequence_encoder: str | None = None,
        max_epochs: int | None = None,
        batch_size: int | None = None,
        patience: int | None = None,
        learning_rate: float = 1e-3,
        weight_decay: float | None = None,
        validation_fraction: float = 0.3,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = True,
    ) -> None:
        self.architecture = architecture
        self.representation = representation
        self.head = head
        self.dropout = dropout
        self.head_difference = head_difference
        self.value_difference = value_difference
        self.outcome = outcome
        self.balance = balance
        self.balance_weight = balance_weight
        self.alpha = alpha
        self.beta = beta
        self.criterion = criterion
        self.n_estimators = n_estimators
        self.sequence_encoder = sequence_encoder
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        treatment: Any,
        y: Any,
        *,
        control: Any = None,
        sample_weight: Any = None,
        sequences: Any = None,
    ) -> UpliftModel:
        """Fit on randomized (or unconfounded) data; ``control`` defaults to "control" or 0."""
        from uplift.fitting import fit_members

        return fit_members(
            self, X, treatment, y, control=control, sample_weight=sample_weight, sequences=sequences
        )

    # ------------------------------------------------------------- predict
    def predict_outcomes(
        self, X: Any, *, outcome: str | int | None = None, sequences: Any = None
    ) -> np.ndarray:
        """Expected outcome under each arm, (n_users, n_incentives + 1); column 0 = control."""
        return self._member_outcomes(X, sequences)[:, :, :, self._target(outcome)].mean(axis=0)

    def outcomes_by_target(self, X: Any, *, sequences: Any = None) -> dict[str, np.ndarray]:
        """``predict_outcomes`` of every target (``outcome_spec_.targets``) from one forward pass:
        target -> (n_users, n_incentives + 1), column 0 = control."""
        mu = self._member_outcomes(X, sequences).mean(axis=0)
        return {t: mu[:, :, j] for j, t in enumerate(self.outcome_spec_.targets)}

    def effect(
        self, X: Any, *, outcome: str | int | None = None, sequences: Any = None
    ) -> np.ndarray:
        """Effect of each incentive versus control, (n_users, n_incentives)."""
        mu = self.predict_outcomes(X, outcome=outcome, sequences=sequences)
        return mu[:, 1:] - mu[:, :1]

    def effect_interval(
        self,
        X: Any,
        alpha: float = 0.05,
        *,
        outcome: str | int | None = None,
        sequences: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Deep-ensemble interval: mean ± z(1−α/2)·sd over members (model uncertainty only)."""
        check_is_fitted(self, "members_")
        if len(self.members_) < 2:
            raise ValueError("effect_interval needs a deep ensemble; refit with n_estimators >= 2")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        mu = self._member_outcomes(X, sequences)[:, :, :, self._target(outcome)]
        effects = mu[:, :, 1:] - mu[:, :, :1]
        center, sd = effects.mean(axis=0), effects.std(axis=0, ddof=1)
        z = NormalDist().inv_cdf(1 - alpha / 2)
        return center - z * sd, center + z * sd

    def arm_index(self, label: Any) -> int:
        """Column of ``label`` in ``effect`` output; KeyError for an unknown incentive."""
        check_is_fitted(self, "members_")
        for j, known in enumerate(self.incentives_):
            if known == label:
                return j
        raise KeyError(f"unknown incentive {label!r}; known: {list(self.incentives_)}")

    @property
    def treatments_(self) -> list[Any]:
        check_is_fitted(self, "members_")
        return [self.control_, *self.incentives_]

    # ---------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write ``path/metadata.json`` (parameters, encoders) and ``path/weights.pt`` (tensors)."""
        check_is_fitted(self, "members_")
        save_model(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> UpliftModel:
        """Read a saved model; weights load with ``torch.load(weights_only=True)``."""
        return load_model(cls, Path(path))

    # -------------------------------------------------------------- helpers
    def _target(self, outcome: str | int | None) -> int:
        check_is_fitted(self, "members_")
        targets = self.outcome_spec_.targets
        if outcome is None:
            return 0
        if isinstance(outcome, int | np.integer) and 0 <= outcome < len(targets):
            return int(outcome)
        if outcome in targets:
            return targets.index(outcome)
        raise ValueError(f"outcome={outcome!r} is unknown; this model predicts {targets}")

    def _member_outcomes(self, X: Any, sequences: Any) -> np.ndarray:
        """(n_members, n_users, n_arms, n_targets) expected outcomes."""
        import torch

        from uplift.fitting import encode_sequences
        from uplift.trainer import TrainData, predict_raw

        check_is_fitted(self, "members_")
        numeric, codes = self.encoder_.transform(X)
        events = encode_sequences(self, sequences, len(numeric), fitting=False)
        n = len(numeric)
        data = TrainData(
            numeric,
            codes,
            np.zeros(n, np.int64),
            np.zeros((n, 1), np.float32),
            np.ones(n, np.float32),
            events,
        )
        out = []
        cpu = torch.device("cpu")
        for net, fused in zip(self.members_, self._fused_members(), strict=True):
            raw = torch.from_numpy(predict_raw(net, data, None, cpu, fused))
            out.append(self.outcome_spec_.expected(raw).numpy())
        return np.stack(out).astype(np.float64)

    def _fused_members(self) -> list[Any]:
        """One ``FusedForward`` per member (None where a member has a sequence encoder), built
        on first use and kept while ``members_`` is the same list (a new fit or load makes a
        new one). Scoring one user then costs its forward pass, not a restacking of weights."""
        from uplift.scoring import FusedForward, supports

        cached = self.__dict__.get("_fused_cache")
        if cached is None or cached[0] is not self.members_:
            fused = [FusedForward(net) if supports(net) else None for net in self.members_]
            cached = (self.members_, fused)
            self.__dict__["_fused_cache"] = cached
        return cached[1]


def _sorted_labels(labels: list[Any]) -> list[Any]:
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=str)


def _as_1d_labels(treatment: Any) -> np.ndarray:
    arr = (
        treatment.to_numpy()
        if isinstance(treatment, pd.Series | pd.Index)
        else np.asarray(treatment)
    )
    if arr.ndim != 1:
        raise ValueError(f"treatment must be 1-D labels, got shape {arr.shape}")
    if pd.isna(arr).any():
        raise ValueError("treatment has missing labels; every row needs its arm's label")
    return arr
