"""``python -m streams`` is the ``tunestream`` command."""

import sys

from streams.tools.cli import main

sys.exit(main())
