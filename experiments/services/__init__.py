"""Use cases (layer: experiments.services).

Each function takes a ``Session``, raises typed errors from ``experiments.errors``, and never commits:
the caller (a request, a job, a CLI command) owns the transaction.
"""
