"""``python -m hifialbedo.cli``: the same as the ``hifialbedo`` command."""

import sys

from hifialbedo.cli import main

sys.exit(main())
