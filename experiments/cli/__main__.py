"""``python -m experiments.cli`` runs the ``liftlab`` command."""

from experiments.cli import main

main()
