"""``python -m flows`` runs the seqops CLI (same as the ``seqops`` console script)."""

from flows.cli import main

main()
