"""jobgate: background jobs whose recorded state never claims a dead process is alive."""

__version__ = "0.1.0"
