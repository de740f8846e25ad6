"""Accounts and their money: API tokens, the credit ledger, usage, request limits, idempotency, the
meters of realtime sessions, and the Fish Audio wallet's monthly package."""
