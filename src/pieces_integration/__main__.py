"""`python -m pieces_integration` is the same as the `pieces-integration` command."""

from pieces_integration.entrypoints.cli import main

main()
