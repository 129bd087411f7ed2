"""``python -m envelope.cli``: the same as the ``envelope`` console script."""

from __future__ import annotations

import sys

from .main import main

sys.exit(main())
