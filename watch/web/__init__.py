"""The web side of AreaWatch: Twilio's webhooks, a health check and Prometheus metrics.

``create_app`` builds the FastAPI application from an engine, settings and a clock the caller
made (nothing is created at import time); ``server.serve`` runs it under uvicorn.
"""

from watch.web.app import create_app

__all__ = ["create_app"]
