"""Staff accounts on the dashboard: passwords, sessions, CSRF tokens and the login rate limit.

Passwords are hashed with argon2id. The session is Starlette's signed cookie (HttpOnly,
SameSite=Lax, Secure when configured) holding only the user's id and a per-session CSRF token;
the user is re-read from the database on every request, so a deleted account stops at once.
Every state-changing request carries the token: a form field on pages, the ``X-CSRF-Token``
header on the JSON API.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from sqlmodel import Session, select

from data.tables.accounts import StaffRole, StaffUser

_hasher = PasswordHasher()

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``.

    >>> verify_password(hash_password("correct horse battery"), "correct horse battery")
    True
    """
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(
    *,
    session: Session,
    organisation_id: str,
    username: str,
    password: str,
    role: StaffRole | str,
    now: datetime,
) -> StaffUser:
    """Add a dashboard user (in the caller's transaction; the caller commits).

    Raises
    ------
    ValueError
        If the password is shorter than ``MIN_PASSWORD_LENGTH`` or the name is taken.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.exec(select(StaffUser).where(StaffUser.username == username)).first():
        raise ValueError(f"user {username!r} already exists")
    user = StaffUser(
        organisation_id=organisation_id,
        username=username,
        password_hash=hash_password(password),
        role=StaffRole(role),
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(*, session: Session, username: str, password: str) -> StaffUser | None:
    """The user whose name and password these are, or None."""
    user = session.exec(select(StaffUser).where(StaffUser.username == username)).first()
    if user is None:
        # Hash anyway, so a wrong name takes as long as a wrong password.
        hash_password(password)
        return None
    return user if verify_password(user.password_hash, password) else None


@dataclass
class LoginLimiter:
    """At most ``limit`` failed logins per (username, client address) in any ``window``.

    In memory, per process: enough for one dashboard server; times come from the app's clock.
    """

    limit: int = 5
    window: timedelta = timedelta(minutes=15)
    _failures: dict[tuple[str, str], deque[datetime]] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, username: str, address: str, now: datetime) -> bool:
        with self._lock:
            return len(self._recent((username.lower(), address), now)) >= self.limit

    def failed(self, username: str, address: str, now: datetime) -> None:
        with self._lock:
            self._recent((username.lower(), address), now).append(now)

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), address), None)


class LoginRequired(Exception):  # noqa: N818  (a signal for the page handler, not an error)
    """A page needs a logged-in user; the app answers with a redirect to the login form."""


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made on first use."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def check_csrf(request: Request, presented: str | None) -> None:
    """403 unless ``presented`` is this session's token."""
    expected = request.session.get(CSRF_FIELD)
    if not expected or not presented or not secrets.compare_digest(expected, presented):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


def start_session(request: Request, user: StaffUser) -> None:
    """Log ``user`` in with a fresh session (a new CSRF token; nothing from before survives)."""
    language = request.session.get("lang")
    request.session.clear()
    request.session["user_id"] = user.id
    if language:
        request.session["lang"] = language
    csrf_token(request)


def end_session(request: Request) -> None:
    request.session.clear()


def _load_user(request: Request) -> StaffUser | None:
    user_id = request.session.get("user_id")
    if not isinstance(user_id, int):
        return None
    with Session(request.app.state.engine) as session:
        user = session.get(StaffUser, user_id)
        if user is not None:
            session.expunge(user)
        return user


def api_user(request: Request) -> StaffUser:
    """The logged-in user for the JSON API (401 when nobody is)."""
    user = _load_user(request)
    if user is None:
        raise HTTPException(status_code=401, detail="log in first")
    return user


def page_user(request: Request) -> StaffUser:
    """The logged-in user for a page (a redirect to the login form when nobody is)."""
    user = _load_user(request)
    if user is None:
        raise LoginRequired
    return user


def require_actor(user: StaffUser) -> None:
    """403 for viewers: they may read, never act."""
    if user.role == StaffRole.viewer:
        raise HTTPException(status_code=403, detail="viewers cannot act on incidents")
