"""A small shared service kit: settings from the environment, JSON logs, metrics, readiness, resilient database
access and an app factory that wires them into every service the same way."""
