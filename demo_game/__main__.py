"""`python -m demo_game`: the same as `shotstream demo`."""
import sys

from demo_game.cli import main

sys.exit(main())
