"""Database credentials of the workload: a versioned secrets store, and rotation without downtime."""
