"""The local "cloud": addresses and ports, embedded PostgreSQL, the link emulator, supervision."""
