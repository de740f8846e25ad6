"""openfish as a real cluster of processes (see ``deployment.py``)."""
