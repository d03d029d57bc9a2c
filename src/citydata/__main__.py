"""``python -m citydata`` runs the command-line interface."""

from citydata.cli.main import main

main()
