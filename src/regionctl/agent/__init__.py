"""The per-region agent: the only code that runs PostgreSQL binaries and opens a region's directories for the
global plane (invariant 8). ``api`` serves it, ``client`` calls it, ``host`` says what it owns."""
