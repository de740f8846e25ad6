"""Engines: speech synthesis (and later recognition, conversion, lip sync) behind small Protocols."""
