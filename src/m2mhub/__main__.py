"""``python -m m2mhub`` is the ``m2mhub`` command."""

import sys

from m2mhub.cli.main import main

sys.exit(main())
