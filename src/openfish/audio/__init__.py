"""Audio encoding for streamed speech and decoding of uploaded audio."""
