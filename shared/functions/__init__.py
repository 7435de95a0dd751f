"""Adapters between Azure Functions' types and the bridge (kept out of function_app.py so it stays thin)."""
