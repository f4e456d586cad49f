"""Failover drills: load with a ledger of every acknowledgement, a fault, the runbook an operator would run,
and an account of every acknowledged write afterwards (on the writer, or lost and in the report; never lost
without a trace). ``check`` is the pure verdict, ``load`` the clients, ``faults`` the faults, ``run`` the
sequence, ``records`` the stored drills and their pages."""
