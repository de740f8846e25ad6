"""openfish: a self-hosted implementation of the FishSpeech Open API."""

__version__ = "0.1.0"
