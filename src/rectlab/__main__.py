"""``python -m rectlab`` (and ``torchrun -m rectlab train ...``): the command line."""

import sys

from rectlab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
