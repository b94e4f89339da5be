"""`python -m hf_detector.hub push ...`: the Hub subcommands without the rest of the CLI."""

import sys

from .push import main

sys.exit(main())
