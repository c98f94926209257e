"""Causal reports of experiments: build one dict, render it as HTML, JSON or a zip of CSVs.

Layer: reports (heavy, like ``experiments.jobs``: it may import ``uplift``/torch and, through
``uplift.causal*``, EconML and DoWhy, always lazily). The web reaches it only through
``experiments.services.reporting``. The JSON schema is documented in docs/report_schema.md.
"""

from __future__ import annotations

from experiments.reports.build import SCHEMA_VERSION, build_report
from experiments.reports.render import FORMATS, render

__all__ = ["FORMATS", "SCHEMA_VERSION", "build_report", "render"]
