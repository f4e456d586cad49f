"""Global databases: one writer region, an async streaming standby in the other; switchover, failover,
preservation of diverged copies, rebuild, snapshots and point-in-time restore (the reference's Aurora global DB)."""
