"""``python -m strataml`` runs the ``strata`` command line."""

from strataml.cli.main import main

main()
