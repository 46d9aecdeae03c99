"""``python -m trailkeep`` runs the command line."""

from trailkeep.cli import main

main()
