"""regionctl: a two-region resilient retail platform you run, break and heal on one machine."""

__version__ = "0.1.0"
