"""``tts-host serve``: the voice library over HTTP, as OpenAI's speech API (FastAPI on uvicorn)."""
