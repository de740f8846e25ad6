"""What every part runs on: the worker pool, readiness, retention, signed URLs, identifiers and the
guards on outgoing requests."""
