"""`python -m onward ...` is the `onward` command."""

import sys

from onward.cli import main

sys.exit(main())
