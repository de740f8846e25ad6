"""Async jobs: a queue with leases on the shared database, and the workers that run them."""
