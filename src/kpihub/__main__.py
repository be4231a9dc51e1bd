"""``python -m kpihub``: the same command line as the ``kpihub`` script."""

from kpihub.cli.main import main

if __name__ == "__main__":
    main()
