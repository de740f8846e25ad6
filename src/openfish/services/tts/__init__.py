"""Text to speech: planning a request, the one render chain, sync and stored synthesis, TTS jobs and
realtime TTS."""
