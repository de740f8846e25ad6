"""Video inspection (PyAV)."""
