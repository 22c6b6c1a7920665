"""``python -m jobgate``."""

from jobgate.cli.main import main

raise SystemExit(main())
