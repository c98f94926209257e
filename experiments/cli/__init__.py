"""The ``liftlab`` command line (layer: entry points).

Importing this module stays light: no Flask, torch, econml or dowhy until a subcommand needs them
(a test checks it). Each subcommand group lives in its own module.
"""

from __future__ import annotations

import click

from experiments import __version__
from experiments.cli import (
    catalog,
    db,
    demo,
    events,
    experiment_commands,
    pacing_commands,  # noqa: F401 - adds `strategy pace` to the strategy group
    report,
    serve,
    simulate,
    strategy_commands,
    uplift_commands,
    users,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="liftlab")
def cli() -> None:
    """liftlab: experiments, sequential statistics, uplift models and budgeted incentive strategy.

    Settings come from LIFTLAB_* environment variables (see `experiments.settings`); with none set,
    everything lives in ./instance (an SQLite database, generated secrets, artifacts).
    """


for group in (
    db.db,
    users.users,
    catalog.incentives,
    events.events,
    experiment_commands.experiments_group,
    strategy_commands.models,
    uplift_commands.uplift,
    strategy_commands.strategy,
    report.report,
    report.report_worker,
    simulate.simulate,
    demo.demo,
    serve.serve,
):
    cli.add_command(group)


def main() -> None:
    cli(prog_name="liftlab")
