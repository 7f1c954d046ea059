"""``python -m progress_bridge.cli`` — the same as ``progress-bridge``."""

import sys

from . import main

sys.exit(main())
