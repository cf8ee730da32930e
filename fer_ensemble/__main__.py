"""`python -m fer_ensemble` runs the command line."""
import sys

from .cli import main

sys.exit(main())
