"""Run the web application under uvicorn (``areawatch serve``)."""

from __future__ import annotations

import logging

import uvicorn

from data.db import make_engine
from watch.clock import Clock, SystemClock
from watch.settings import Settings
from watch.web.app import create_app

logger = logging.getLogger(__name__)


def make_server(
    *,
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    clock: Clock | None = None,
    public_base_url: str | None = None,
) -> uvicorn.Server:
    """A uvicorn server for the app on ``settings.database_url``, not yet started.

    Bound to 127.0.0.1 by default: in production a TLS proxy in front forwards Twilio's requests.
    """
    engine = make_engine(settings.database_url)
    app = create_app(
        engine=engine,
        settings=settings,
        clock=clock or SystemClock(),
        public_base_url=public_base_url,
    )
    config = uvicorn.Config(app, host=host, port=port)
    return uvicorn.Server(config)


def serve(
    *,
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    clock: Clock | None = None,
    public_base_url: str | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    server = make_server(
        settings=settings, host=host, port=port, clock=clock, public_base_url=public_base_url
    )
    logger.info("serving on http://%s:%d", host, port)
    server.run()
    server.config.app.state.engine.dispose()
