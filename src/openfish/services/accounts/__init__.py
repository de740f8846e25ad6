"""Accounts and their money: API tokens, the credit ledger, usage, request limits, idempotency and
the meters of realtime sessions."""
