"""``python -m jobgate``."""

from jobgate import main

raise SystemExit(main())
