"""``python -m sb3_crptpro ...``: the ``sb3-crptpro`` command."""

import sys

from sb3_crptpro.app.cli import main

sys.exit(main())
