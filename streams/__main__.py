"""``python -m streams`` is the ``tunestream`` command."""

import sys

from streams.cli import main

sys.exit(main())
