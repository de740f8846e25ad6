"""The official Fish Audio API's fields and shapes in our terms (TTS options, wallet, voice models),
for the routes of ``api/fish_*.py``; the work itself is done by the services of each domain."""
