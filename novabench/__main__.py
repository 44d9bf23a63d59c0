"""`python -m novabench`."""

from novabench.entry import main

main()
