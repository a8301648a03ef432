"""``python -m certportal_agent`` runs the same command line as the console script."""

import sys

from certportal_agent.cli import main

sys.exit(main())
