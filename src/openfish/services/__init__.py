"""Business rules, free of HTTP, one package per domain: ``accounts`` (tokens, billing, usage,
limits, idempotency), ``tts``, ``asr``, ``voices``, ``media`` (uploads, media URLs, lip sync),
``webhooks`` and ``runtime`` (the worker pool, readiness, retention, signing, guards)."""
