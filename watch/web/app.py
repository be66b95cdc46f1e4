"""The FastAPI application factory.

Everything a request needs (engine, settings, clock, the signature checker) is handed in and kept
on ``app.state``; routes read it from there, so tests build an app on their own database and
frozen clock, and nothing is created at import time.
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError
from starlette.middleware.sessions import SessionMiddleware

from watch.clock import Clock
from watch.settings import Settings
from watch.web.api import router as api_router
from watch.web.auth import LoginLimiter, LoginRequired
from watch.web.dashboard import router as dashboard_router
from watch.web.health import metrics_registry
from watch.web.health import router as health_router
from watch.web.twilio_hooks import SignatureChecker
from watch.web.twilio_hooks import router as twilio_router

logger = logging.getLogger(__name__)


def public_base_from(settings: Settings, public_base_url: str | None) -> str | None:
    """The URL Twilio is told to call, without a trailing slash, or None when unknown.

    An explicit ``public_base_url`` wins (it may carry a path prefix the proxy strips);
    otherwise the origin of ``settings.twilio.status_callback``, which Twilio already calls.

    >>> from watch.settings import TwilioSettings
    >>> callback = "https://aw.example.jp/twilio/status"
    >>> settings = Settings(twilio=TwilioSettings(status_callback=callback))
    >>> public_base_from(settings, None)
    'https://aw.example.jp'
    >>> public_base_from(settings, "https://example.jp/areawatch/")
    'https://example.jp/areawatch'
    """
    if public_base_url:
        return public_base_url.rstrip("/")
    callback = settings.twilio.status_callback
    if callback:
        parts = urlsplit(callback)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def create_app(
    *,
    engine: Engine,
    settings: Settings,
    clock: Clock,
    public_base_url: str | None = None,
    session_secret: str | None = None,
    secure_cookies: bool | None = None,
    session_max_age: int | None = None,
) -> FastAPI:
    """Build the web application.

    Parameters
    ----------
    engine
        The database every request uses.
    settings
        ``settings.twilio.auth_token`` signs Twilio's webhooks; without it every webhook is
        refused (403), so a misconfigured server cannot be driven by forged requests.
    clock
        Where each request's ``now`` comes from.
    public_base_url
        The public URL Twilio calls (``https://aw.example.jp``). Signatures cover the URL Twilio
        used, which behind a proxy is not the one the server sees. When neither this nor
        ``settings.twilio.status_callback`` gives it, the request's own URL is used, which only
        works when the server faces the internet directly.
    session_secret
        Signs the dashboard's session cookie. Default ``AREAWATCH_SESSION_SECRET``; without
        either, a random one, so sessions end when the server restarts.
    secure_cookies
        Send the session cookie over HTTPS only. Default ``AREAWATCH_SECURE_COOKIES`` ("1"),
        else ``[dashboard] secure_cookies``, else on when the public base URL is https.
    session_max_age
        Seconds a dashboard login lasts. Default ``[dashboard] session_hours``.

    The login rate limit is ``[dashboard] login_attempts`` per ``login_window_minutes``.
    """
    base = public_base_from(settings, public_base_url)
    if settings.twilio.auth_token is None:
        logger.warning("no Twilio auth token configured: every Twilio webhook will be refused")
    if base is None:
        logger.warning(
            "no public base URL configured: Twilio signatures are checked against the request "
            "URL, which fails behind a proxy"
        )
    secret = session_secret or os.environ.get("AREAWATCH_SESSION_SECRET")
    if not secret:
        logger.warning("no AREAWATCH_SESSION_SECRET: dashboard logins end when the server restarts")
        secret = secrets.token_urlsafe(32)
    dashboard = settings.dashboard
    if secure_cookies is None and "AREAWATCH_SECURE_COOKIES" in os.environ:
        secure_cookies = os.environ["AREAWATCH_SECURE_COOKIES"] == "1"
    if secure_cookies is None:
        secure_cookies = dashboard.secure_cookies
    if secure_cookies is None:
        secure_cookies = bool(base and base.startswith("https://"))
    if session_max_age is None:
        session_max_age = round(dashboard.session_hours * 3600)
    # The schema documents the dashboard API; no docs UI, which would load scripts from a CDN.
    app = FastAPI(title="AreaWatch", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="areawatch_session",
        max_age=session_max_age,
        same_site="lax",
        https_only=secure_cookies,
    )
    app.state.login_limiter = LoginLimiter(
        limit=dashboard.login_attempts,
        window=timedelta(minutes=dashboard.login_window_minutes),
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.clock = clock
    app.state.signatures = SignatureChecker(
        auth_token=settings.twilio.auth_token, public_base_url=base
    )
    app.state.metrics_registry = metrics_registry(engine, clock)
    app.include_router(twilio_router)
    app.include_router(health_router)
    app.include_router(api_router)
    app.include_router(dashboard_router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.middleware("http")
    async def refuse_nul(request: Request, call_next):  # noqa: ANN001, ANN202
        # PostgreSQL cannot hold a NUL character in text: such an id or filter is a client
        # mistake (422), not a database error (500).
        if "\x00" in request.url.path or "%00" in request.url.query:
            return JSONResponse({"detail": "NUL characters are not allowed"}, status_code=422)
        return await call_next(request)

    @app.exception_handler(DataError)
    async def refused_value(request: Request, error: DataError) -> JSONResponse:
        logger.info("the database refused a value: %s", type(error.orig).__name__)
        return JSONResponse({"detail": "a value was refused by the database"}, status_code=422)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _: LoginRequired) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    return app
