"""Peer CATE estimators behind ``UpliftModel``'s interface, for side-by-side benchmarks
(uplift layer; the only module that may import econml, always lazily).

Every peer: ``fit(X, treatment, y, *, control=None, sample_weight=None)`` → self and
``effect(X)`` → (n_users, n_incentives), columns in ``incentives_`` order (sorted non-control
labels), exactly like ``UpliftModel``. Binary-treatment libraries (catenets) are fitted once per
incentive on control ∪ that incentive. ``y`` is a 1-D outcome.

Peers (name → class, see ``PEERS``):
    causal_forest  EconML CausalForestDML (discrete treatment, LightGBM nuisances)
    dr_learner     EconML DRLearner, LightGBM outcome models, its automatic propensity model
                   (a LightGBM propensity overfits IHDP), final stage linear or a forest
    x_learner      EconML XLearner with LightGBM models
    s_learner      LightGBM S-learner (treatment one-hot as features)
    t_learner      LightGBM T-learner (one model per arm)
    catenets_snet, catenets_tarnet  catenets 0.2.4 torch SNet/TARNet with batch_norm=False and
                   binary_y=False (its batch norm diverges on IHDP; binary_y=True makes both heads
                   learn the same function), two-valued columns as 0/1; installed into a folder
                   of its own (``catenets_dir``), see ``INSTALL_HINT``
"""

from __future__ import annotations

import abc
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from uplift.features import FeatureEncoder

INSTALL_HINT = {
    "econml": "pip install 'liftlab[causal]' (econml==0.17.0)",
    "lightgbm": "pip install 'liftlab[causal]' (lightgbm)",
    "catenets": (
        "pip install loguru gdown && pip install --no-deps --target "
        "<venv>/peers/catenets catenets==0.2.4 (or set LIFTLAB_CATENETS_DIR to the --target "
        "folder)"
    ),
}
CATENETS_DIR_ENV = "LIFTLAB_CATENETS_DIR"


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ImportError(
            f"{module} is needed for this peer; install it: {INSTALL_HINT[top]}"
        ) from exc


def catenets_dir() -> Path:
    """The folder holding catenets installed with ``pip install --no-deps --target``:
    ``$LIFTLAB_CATENETS_DIR``, else ``peers/catenets`` inside the running environment."""
    return Path(os.environ.get(CATENETS_DIR_ENV) or Path(sys.prefix) / "peers" / "catenets")


def _catenets_spec() -> importlib.machinery.ModuleSpec | None:
    """Where catenets would be loaded from: its own folder first, else an ordinary install."""
    spec = importlib.machinery.PathFinder.find_spec("catenets", [str(catenets_dir())])
    return spec if spec is not None else importlib.util.find_spec("catenets")


def catenets_available() -> bool:
    """True when the catenets peers can load (loaded already, in its folder, or installed)."""
    return sys.modules.get("catenets") is not None or _catenets_spec() is not None


def _catenets_torch() -> Any:
    """``catenets.models.torch``, from the isolated folder when it holds catenets.

    catenets' wheel also installs a top-level ``experiments`` package (its papers' scripts), which
    shadows liftlab's own ``experiments`` when both sit on ``sys.path``. So catenets is installed
    into a folder of its own and only its ``catenets`` package is loaded from there; the folder
    never goes on ``sys.path``. A catenets installed the ordinary way is used when the folder
    has none.
    """
    if "catenets" not in sys.modules:
        spec = importlib.machinery.PathFinder.find_spec("catenets", [str(catenets_dir())])
        if spec is not None and spec.loader is not None:  # else: an ordinary install, or none
            module = importlib.util.module_from_spec(spec)
            sys.modules["catenets"] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                for name in [m for m in sys.modules if m.split(".")[0] == "catenets"]:
                    del sys.modules[name]
                raise
    return _require("catenets.models.torch")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _lgbm(kind: str, seed: int, n_jobs: int | None = None, **overrides: Any) -> Any:
    lgb = _require("lightgbm")
    params = {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "random_state": seed,
        "verbose": -1,
        "n_jobs": n_jobs or usable_cores(),
    }
    params.update(overrides)
    return lgb.LGBMRegressor(**params) if kind == "reg" else lgb.LGBMClassifier(**params)


class Peer(abc.ABC):
    """Shared label handling and feature design (standardized numerics + one-hot categoricals).

    ``n_jobs``: threads of every LightGBM nuisance or outcome model (None: the usable cores), so a
    side-by-side run can give the peers the same threads as liftlab's torch.
    """

    name = "peer"

    def __init__(self, random_state: int = 0, n_jobs: int | None = None) -> None:
        if n_jobs is not None and int(n_jobs) < 1:
            raise ValueError(f"n_jobs must be >= 1 (or None for the usable cores), got {n_jobs}")
        self.random_state = random_state
        self.n_jobs = None if n_jobs is None else int(n_jobs)

    def _gbm(self, kind: str) -> Any:
        """A seeded LightGBM regressor ("reg") or classifier ("clf") with this peer's threads."""
        return _lgbm(kind, self.random_state, self.n_jobs)

    def fit(
        self, X: Any, treatment: Any, y: Any, *, control: Any = None, sample_weight: Any = None
    ) -> Peer:
        from uplift.fitting import resolve_control
        from uplift.model import _as_1d_labels, _sorted_labels

        labels = _as_1d_labels(treatment)
        y_arr = np.asarray(y, dtype=float)
        if y_arr.ndim != 1 or len(y_arr) != len(labels):
            raise ValueError("peers take a 1-D y with one value per treatment label")
        unique = _sorted_labels(list(dict.fromkeys(labels.tolist())))
        self.control_ = resolve_control(unique, control)
        self.incentives_ = [label for label in unique if label != self.control_]
        arm = np.zeros(len(labels), np.int64)
        for j, label in enumerate(self.incentives_, start=1):
            arm[labels == label] = j
        self.encoder_ = FeatureEncoder.fit(X)
        self._fit(self._design(X), arm, y_arr, sample_weight)
        return self

    def effect(self, X: Any) -> np.ndarray:
        return np.asarray(self._effect(self._design(X)), dtype=float).reshape(
            -1, len(self.incentives_)
        )

    def _design(self, X: Any) -> np.ndarray:
        numeric, codes = self.encoder_.transform(X)
        blocks = [numeric.astype(np.float64)]
        for j, size in enumerate(self.encoder_.cardinalities):
            blocks.append(np.eye(size)[codes[:, j]][:, 1:])  # column 0 = unknown level
        return np.hstack(blocks)

    @abc.abstractmethod
    def _fit(self, X: np.ndarray, arm: np.ndarray, y: np.ndarray, w: Any) -> None:
        """Fit the peer on encoded features, arm indices (0 = control) and outcomes."""

    @abc.abstractmethod
    def _effect(self, X: np.ndarray) -> np.ndarray:
        """(n, n_incentives) effects versus control."""


class _EconMLPeer(Peer):
    def _fit(self, X: np.ndarray, arm: np.ndarray, y: np.ndarray, w: Any) -> None:
        self.model_ = self._make()
        self.model_.fit(y, arm, X=X, sample_weight=w)

    def _effect(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [self.model_.effect(X, T0=0, T1=k) for k in range(1, len(self.incentives_) + 1)]
        )

    @abc.abstractmethod
    def _make(self) -> Any:
        """The unfitted EconML estimator."""


class CausalForestPeer(_EconMLPeer):
    name = "EconML CausalForestDML"

    def _make(self) -> Any:
        dml = _require("econml.dml")
        return dml.CausalForestDML(
            model_y=self._gbm("reg"),
            model_t=self._gbm("clf"),
            discrete_treatment=True,
            n_estimators=200,
            random_state=self.random_state,
            cv=2,
            n_jobs=self.n_jobs or usable_cores(),
        )


class DRLearnerPeer(_EconMLPeer):
    name = "EconML DRLearner"

    def __init__(
        self, random_state: int = 0, final: str = "linear", n_jobs: int | None = None
    ) -> None:
        super().__init__(random_state, n_jobs)
        self.final = final

    def _make(self) -> Any:
        dr = _require("econml.dr")
        common = {
            "model_propensity": "auto",
            "model_regression": self._gbm("reg"),
            "cv": 2,
            "random_state": self.random_state,
        }
        if self.final == "linear":
            return dr.LinearDRLearner(**common)
        if self.final == "forest":
            return dr.ForestDRLearner(**common, n_estimators=200)
        raise ValueError(f"final={self.final!r} is unknown; use 'linear' or 'forest'")


class XLearnerPeer(_EconMLPeer):
    name = "EconML XLearner"

    def _make(self) -> Any:
        meta = _require("econml.metalearners")
        linear = importlib.import_module("sklearn.linear_model")
        return meta.XLearner(
            models=self._gbm("reg"),
            propensity_model=linear.LogisticRegression(max_iter=1000),
        )

    def _fit(self, X: np.ndarray, arm: np.ndarray, y: np.ndarray, w: Any) -> None:
        self.model_ = self._make()
        self.model_.fit(y, arm, X=X)  # XLearner takes no sample_weight


class SLearnerPeer(Peer):
    name = "LightGBM S-learner"

    def _fit(self, X: np.ndarray, arm: np.ndarray, y: np.ndarray, w: Any) -> None:
        self.model_ = self._gbm("reg")
        self.model_.fit(self._with_arm(X, arm), y, sample_weight=w)

    def _with_arm(self, X: np.ndarray, arm: np.ndarray | int) -> np.ndarray:
        onehot = np.zeros((len(X), len(self.incentives_)))
        arm = np.broadcast_to(arm, (len(X),))
        rows = np.flatnonzero(arm > 0)
        onehot[rows, arm[rows] - 1] = 1.0
        return np.hstack([X, onehot])

    def _effect(self, X: np.ndarray) -> np.ndarray:
        base = self.model_.predict(self._with_arm(X, 0))
        return np.column_stack(
            [
                self.model_.predict(self._with_arm(X, k)) - base
                for k in range(1, len(self.incentives_) + 1)
            ]
        )


class TLearnerPeer(Peer):
    name = "LightGBM T-learner"

    def _fit(self, X: np.ndarray, arm: np.ndarray, y: np.ndarray, w: Any) -> None:
        self.models_ = []
        for k in range(len(self.incentives_) + 1):
            rows = arm == k
            model = self._gbm("reg")
            model.fit(X[rows], y[rows], sample_weight=None if w is None else np.asarray(w)[rows])
            self.models_.append(model)

    def _effect(self, X: np.ndarray) -> np.ndarray:
        base = self.models_[0].predict(X)
        return np.column_stack([m.predict(X) - base for m in self.models_[1:]])


class CatenetsPeer(Peer):
    """catenets torch SNet/TARNet, one binary model per incentive (sample_weight unsupported)."""

    def __init__(
        self, random_state: int = 0, model: str = "SNet", n_jobs: int | None = None
    ) -> None:
        super().__init__(random_state, n_jobs)
        self.model = model
        self.name = f"catenets {model}"

    def _indicators_as_0_1(self, X: np.ndarray) -> np.ndarray:
        """Two-valued columns mapped back to 0/1 (the shared design standardizes them too).

        catenets' own IHDP pipeline feeds standardized continuous covariates and raw 0/1
        indicators; on IHDP replications 1-2 the standardized indicators cost its SNet 0.67 ->
        0.89 and 0.44 -> 0.76 out-of-sample sqrt(PEHE).
        """
        return (X - self.low_) / self.span_

    def _fit(self, X: np.ndarray, arm: np.ndarray, y: np.ndarray, w: Any) -> None:
        torch_models = _catenets_torch()
        cls = getattr(torch_models, self.model)
        two_valued = np.array([len(np.unique(col)) == 2 for col in X.T], dtype=bool)
        self.low_ = np.where(two_valued, X.min(axis=0), 0.0)
        self.span_ = np.where(two_valued, X.max(axis=0) - X.min(axis=0), 1.0)
        X = self._indicators_as_0_1(X)
        self.models_ = []
        for k in range(1, len(self.incentives_) + 1):
            rows = (arm == 0) | (arm == k)
            net = cls(
                n_unit_in=X.shape[1], binary_y=False, batch_norm=False, seed=self.random_state
            )
            net.fit(X[rows], y[rows], (arm[rows] == k).astype(int))
            self.models_.append(net)

    def _effect(self, X: np.ndarray) -> np.ndarray:
        X = self._indicators_as_0_1(X)
        return np.column_stack([m.predict(X).detach().cpu().numpy().ravel() for m in self.models_])


PEERS: dict[str, Any] = {
    "causal_forest": CausalForestPeer,
    "dr_learner": DRLearnerPeer,
    "x_learner": XLearnerPeer,
    "s_learner": SLearnerPeer,
    "t_learner": TLearnerPeer,
    "catenets_snet": lambda random_state=0, n_jobs=None: CatenetsPeer(random_state, "SNet", n_jobs),
    "catenets_tarnet": lambda random_state=0, n_jobs=None: CatenetsPeer(
        random_state, "TARNet", n_jobs
    ),
}


def make_peer(name: str, random_state: int = 0, n_jobs: int | None = None) -> Peer:
    """The peer ``name`` (a key of ``PEERS``); ``n_jobs`` as in ``Peer``."""
    try:
        factory = PEERS[name]
    except KeyError:
        raise KeyError(f"unknown peer {name!r}; choose one of {sorted(PEERS)}") from None
    return factory(random_state=random_state, n_jobs=n_jobs)
