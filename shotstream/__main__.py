"""`python -m shotstream` is the `shotstream` command."""
from shotstream.cli import main

raise SystemExit(main())
