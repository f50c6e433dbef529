"""``python -m gcs`` is the ``gcs`` command."""

import sys

from gcs.cli import main

sys.exit(main())
