"""``python -m tsgen``: the same command line as the ``tsgen`` console script."""

from tsgen.cli import main

if __name__ == "__main__":
    main()
