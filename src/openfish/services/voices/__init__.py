"""Voices: the catalogue (built-in and made), listing, usage counts, reference uploads, analysis (a
job kind) and conversion."""
