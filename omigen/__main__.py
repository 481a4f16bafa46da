"""``python -m omigen`` is the ``omigen`` command (also what torchrun launches)."""

import sys

from omigen.cli import main

sys.exit(main())
