"""Engines: speech synthesis (and later recognition, conversion, lip sync) behind small Protocols."""

import os

# onnxruntime (under Piper and Kokoro) records telemetry in ~/.cache on import unless told not to;
# a self-hosted server should neither phone home nor depend on a writable home directory.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
