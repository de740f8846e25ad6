"""Business rules, free of HTTP: accounts, tokens, billing, usage, limits."""
