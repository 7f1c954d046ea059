"""The demo FastAPI application: wiring only."""
