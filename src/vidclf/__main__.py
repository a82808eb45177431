"""`python -m vidclf`: the vidclf command."""

from vidclf.cli import main

main()
