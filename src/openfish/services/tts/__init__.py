"""Text to speech: planning a request, the one render chain, sync and stored synthesis, TTS jobs,
realtime TTS, and the OpenAI and Fish Audio speech requests in our terms."""
