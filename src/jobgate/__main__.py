"""``python -m jobgate``."""

from jobgate.cli import main

raise SystemExit(main())
