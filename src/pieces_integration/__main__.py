"""`python -m pieces_integration` is the same as the `pieces-integration` command."""

from pieces_integration.entrypoints.launch import main

main()
