"""``areawatch user add``: an operator creates a dashboard account."""

from __future__ import annotations

from sqlmodel import Session, select
from typer.testing import CliRunner

from data.tables import StaffUser
from watch.cli import app
from watch.web.auth import verify_password

runner = CliRunner()


def test_user_add_reads_the_password_from_stdin(database, wards):
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "sato",
            "--organisation",
            "north",
            "--role",
            "viewer",
            "--password-stdin",
            "--database-url",
            database.url,
        ],
        input="a long enough secret\n",
    )
    assert result.exit_code == 0, result.output
    with Session(database.engine) as session:
        user = session.exec(select(StaffUser)).one()
    assert (user.username, user.organisation_id, user.role) == ("sato", "north", "viewer")
    assert verify_password(user.password_hash, "a long enough secret")
    assert "a long enough secret" not in result.output


def test_user_add_refuses_an_unknown_organisation(database, wards):
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "sato",
            "--organisation",
            "nowhere",
            "--password-stdin",
            "--database-url",
            database.url,
        ],
        input="a long enough secret\n",
    )
    assert result.exit_code == 2
    with Session(database.engine) as session:
        assert session.exec(select(StaffUser)).all() == []
