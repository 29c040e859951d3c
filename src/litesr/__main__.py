"""``python -m litesr`` (and ``torchrun -m litesr``) runs the command-line interface."""
import sys

from .cli import main

sys.exit(main())
