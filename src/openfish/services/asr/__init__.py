"""Speech to text: transcription of whole files and realtime transcription sessions."""
