"""The ``regionctl`` command line: one module per command group; commands return data, ``render`` formats it."""
