"""Database layer: SQLAlchemy 2.0 typed models and engine/session helpers.

Importing this package registers every table on ``Base.metadata`` (Alembic reads it from here).
"""

from experiments.db.accounts import API_SCOPES, ROLES, Account, ApiKey, AuditEntry
from experiments.db.base import Base, utcnow
from experiments.db.catalog import INCENTIVE_KINDS, METRIC_KINDS, Incentive, Metric
from experiments.db.events import Event
from experiments.db.experiment import (
    METRIC_ROLES,
    STATUSES,
    Assignment,
    Experiment,
    ExperimentMetric,
    ResultSnapshot,
    Variant,
)
from experiments.db.report_jobs import JOB_STATUSES, ReportJob
from experiments.db.session import make_engine, make_session_factory, take_sqlite_write_lock
from experiments.db.strategy import Decision, ModelRun, Strategy

__all__ = [
    "take_sqlite_write_lock",
    "API_SCOPES",
    "INCENTIVE_KINDS",
    "JOB_STATUSES",
    "METRIC_KINDS",
    "METRIC_ROLES",
    "ROLES",
    "STATUSES",
    "Account",
    "ApiKey",
    "Assignment",
    "AuditEntry",
    "Base",
    "Decision",
    "Event",
    "Experiment",
    "ExperimentMetric",
    "Incentive",
    "Metric",
    "ModelRun",
    "ReportJob",
    "ResultSnapshot",
    "Strategy",
    "Variant",
    "make_engine",
    "make_session_factory",
    "utcnow",
]
