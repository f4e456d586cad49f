"""Operators: who calls the control plane. A token per operator (stored only as a hash), a role per operator
deciding what each API call may do, and an append-only audit log of every mutating call with who made it.
``store`` keeps the operators, ``roles`` says what each role permits, ``audit`` is the log, ``caller`` finds the
CLI caller's token."""
