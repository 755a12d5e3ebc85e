"""`python -m services …` is the `profiles` command."""

from services.cli import main

main()
