"""Storage: the relational database (accounts, tokens, ledger) and, later, blobs."""
