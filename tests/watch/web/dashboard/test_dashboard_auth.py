"""Logging in and out, the session cookie, CSRF tokens and the login rate limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from data.tables import StaffUser
from watch.web.auth import verify_password


def test_the_password_is_stored_as_an_argon2_hash(engine, make_user, wards):
    make_user("sato")
    with Session(engine) as session:
        user = session.exec(select(StaffUser).where(StaffUser.username == "sato")).one()
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert verify_password(user.password_hash, "correct horse battery")


def test_pages_redirect_to_the_login_form_when_logged_out(dashboard, wards):
    response = dashboard.get("/households/n1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fhouseholds%2Fn1"


def test_the_api_answers_401_when_logged_out(dashboard, wards):
    assert dashboard.get("/api/households").status_code == 401


def test_a_right_password_logs_in_with_an_httponly_lax_cookie(dashboard, make_user, log_in, wards):
    make_user("sato")
    response = log_in(dashboard, "sato")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "areawatch_session=" in cookie
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http in tests; on when configured
    assert dashboard.get("/").status_code == 200


def test_the_cookie_is_secure_when_configured(engine, settings, clock, make_user, wards):
    from fastapi.testclient import TestClient

    from watch.web import create_app

    app = create_app(
        engine=engine, settings=settings, clock=clock, session_secret="s", secure_cookies=True
    )
    with TestClient(app, base_url="https://testserver") as client:
        response = client.get("/login")
    assert "secure" in response.headers["set-cookie"].lower()


def test_a_wrong_password_is_refused(dashboard, make_user, log_in, wards):
    make_user("sato")
    response = log_in(dashboard, "sato", "wrong password!")
    assert response.status_code == 401
    assert dashboard.get("/api/households").status_code == 401


def test_a_login_without_the_csrf_token_is_refused(dashboard, make_user, wards):
    make_user("sato")
    dashboard.get("/login")
    response = dashboard.post(
        "/login", data={"username": "sato", "password": "correct horse battery"}
    )
    assert response.status_code in (403, 422)
    assert dashboard.get("/api/households").status_code == 401


def test_five_failures_block_the_username_for_fifteen_minutes(
    dashboard, make_user, log_in, clock, wards
):
    make_user("sato")
    for _ in range(5):
        assert log_in(dashboard, "sato", "wrong password!").status_code == 401
    # Even the right password is refused while blocked.
    assert log_in(dashboard, "sato").status_code == 429
    clock.advance(timedelta(minutes=15, seconds=1))
    assert log_in(dashboard, "sato").status_code == 303


def test_logout_needs_the_token_and_ends_the_session(dashboard, as_user, form_csrf):
    as_user()
    page = dashboard.get("/").text
    assert dashboard.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert dashboard.get("/api/households").status_code == 200
    response = dashboard.post(
        "/logout", data={"csrf_token": form_csrf(page)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert dashboard.get("/api/households").status_code == 401


def test_login_does_not_redirect_to_another_site(dashboard, make_user, form_csrf, wards):
    make_user("sato")
    token = form_csrf(dashboard.get("/login").text)
    response = dashboard.post(
        "/login",
        data={
            "username": "sato",
            "password": "correct horse battery",
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("path", ["/api/incidents/{id}/acknowledge", "/api/incidents/{id}/notes"])
def test_api_posts_without_the_csrf_header_are_refused(dashboard, as_user, wards, path):
    as_user()
    url = path.format(id=wards.north_incident)
    response = dashboard.post(url, json={"text": "hello"})
    assert response.status_code == 403
    response = dashboard.post(url, json={"text": "hello"}, headers={"X-CSRF-Token": "forged"})
    assert response.status_code == 403


def test_page_forms_without_the_csrf_token_are_refused(dashboard, as_user, wards):
    as_user()
    response = dashboard.post(
        f"/incidents/{wards.north_incident}/acknowledge", data={"csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert dashboard.get(f"/api/incidents/{wards.north_incident}").json()["status"] == "open"


def test_a_short_password_is_rejected(engine, clock, wards):
    from watch.web.auth import create_user

    with Session(engine) as session, pytest.raises(ValueError, match="at least"):
        create_user(
            session=session,
            organisation_id="north",
            username="x",
            password="short",
            role="staff",
            now=clock.now(),
        )
