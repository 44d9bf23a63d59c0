"""`python -m novabench`."""

from novabench.cli import main

main()
