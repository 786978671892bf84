"""`python -m streams.cli` is `tandem`."""

from streams.cli import main

main()
