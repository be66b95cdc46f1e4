"""Property-based: no request a logged-in user can make to the JSON API gives a server error.

Schemathesis generates path, query and body values from the app's own OpenAPI schema
(``/api/openapi.json``) and sends them, with the session cookie and the CSRF header, to the
app in-process; the ``not_a_server_error`` check fails on any 5xx (an exception escaping the
app fails too). Examples per operation are few, to keep the run to seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from watch.web import create_app

EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def logged_in_app(engine, settings, clock, make_user, wards, log_in):  # noqa: ANN201
    """The app, the session cookie and the CSRF header of North's staff user."""
    app = create_app(engine=engine, settings=settings, clock=clock, session_secret="test-secret")
    make_user("sato")
    with TestClient(app) as client:
        assert log_in(client, "sato").status_code == 303
        token = client.get("/api/me").json()["csrf_token"]
        cookies = {"areawatch_session": client.cookies["areawatch_session"]}
    return app, cookies, {"X-CSRF-Token": token}


def test_no_api_request_of_a_logged_in_user_is_a_server_error(logged_in_app):
    app, cookies, headers = logged_in_app
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {(op.method.upper(), op.path) for op in operations}
    # The schema must cover what this test is for: reads, actions, the report and the review.
    assert ("GET", "/api/reports/{month}") in paths
    assert ("GET", "/api/review") in paths
    assert ("POST", "/api/incidents/{incident_id}/resolve") in paths
    statuses: dict[tuple[str, str], set[int]] = {}
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def no_server_error(case) -> None:  # noqa: ANN001
            response = case.call(headers=headers, cookies=cookies)
            key = (case.operation.method.upper(), case.operation.path)
            statuses.setdefault(key, set()).add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        no_server_error()
    # The requests were made logged in, and actions got past the CSRF check.
    assert statuses[("GET", "/api/review")] == {200}
    assert 200 in statuses[("GET", "/api/reports/{month}")]
    assert not statuses[("POST", "/api/incidents/{incident_id}/notes")] & {401, 403}
