"""Voices: the catalogue (built-in and made), reference uploads, analysis (a job kind) and conversion."""
