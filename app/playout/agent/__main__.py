"""`python -m app.playout.agent`: the same as `loaxa-agent`."""

import sys

from app.playout.agent.cli import main

sys.exit(main())
