"""``[dashboard]`` in the settings file: session lifetime, secure cookies, the login limit and
the map, read by the app and checked by ``areawatch check-config``."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from watch.cli import app as cli
from watch.settings import DashboardSettings, Settings, SettingsError, load_settings
from watch.web import create_app

runner = CliRunner()


def _load(tmp_path, text: str) -> Settings:
    path = tmp_path / "areawatch.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={})


def test_the_dashboard_section_is_read_from_the_settings_file(tmp_path):
    settings = _load(
        tmp_path,
        "[dashboard]\nsession_hours = 2\nsecure_cookies = true\nlogin_attempts = 3\n"
        'login_window_minutes = 30\ntile_url = "https://t.example.jp/{z}/{x}/{y}.png"\n',
    )
    assert settings.dashboard == DashboardSettings(
        session_hours=2,
        secure_cookies=True,
        login_attempts=3,
        login_window_minutes=30,
        tile_url="https://t.example.jp/{z}/{x}/{y}.png",
    )
    assert load_settings(None, environ={}).dashboard == DashboardSettings()


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("session_hours = 0", "session_hours"),
        ('secure_cookies = "yes"', "secure_cookies"),
        ("login_attempts = 0", "login_attempts"),
        ("login_attempts = 2.5", "login_attempts"),
        ("login_window_minutes = -1", "login_window_minutes"),
        ('tile_url = "https://t.example.jp/tiles.png"', "tile_url"),
        ('tile_url = "ftp://t.example.jp/{z}/{x}/{y}.png"', "tile_url"),
        ('areas_geojson = "/no/such/areas.geojson"', "areas_geojson"),
        ("session_minutes = 5", "unknown keys in \\[dashboard\\]"),
    ],
)
def test_a_bad_dashboard_setting_is_explained(tmp_path, line, complaint):
    with pytest.raises(SettingsError, match=complaint):
        _load(tmp_path, f"[dashboard]\n{line}\n")


def test_session_lifetime_and_secure_flag_come_from_the_settings(
    engine, clock, make_user, log_in, wards, monkeypatch
):
    monkeypatch.delenv("AREAWATCH_SECURE_COOKIES", raising=False)
    settings = Settings(dashboard=DashboardSettings(session_hours=2, secure_cookies=True))
    app = create_app(engine=engine, settings=settings, clock=clock, session_secret="s")
    with TestClient(app, base_url="https://testserver") as client:
        make_user("sato")
        cookie = log_in(client, "sato").headers["set-cookie"].lower()
    assert "max-age=7200" in cookie
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_the_login_limit_comes_from_the_settings(engine, clock, make_user, log_in, wards):
    settings = Settings(dashboard=DashboardSettings(login_attempts=2, login_window_minutes=1))
    app = create_app(engine=engine, settings=settings, clock=clock, session_secret="s")
    with TestClient(app) as client:
        make_user("sato")
        assert [log_in(client, "sato", "wrong password").status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
        assert log_in(client, "sato").status_code == 429
        clock.advance(timedelta(minutes=1, seconds=1))
        assert log_in(client, "sato").status_code == 303


def test_check_config_describes_the_dashboard_and_checks_the_areas_file(database, tmp_path):
    areas = tmp_path / "areas.geojson"
    areas.write_text(json.dumps({"type": "FeatureCollection", "features": []}), encoding="utf-8")
    config = tmp_path / "areawatch.toml"
    config.write_text(f'[dashboard]\nsession_hours = 8\nareas_geojson = "{areas}"\n')
    result = runner.invoke(
        cli, ["check-config", "--config", str(config), "--database-url", database.url]
    )
    assert result.exit_code == 0, result.output
    assert "logins last 8 h" in result.output
    assert "tiles none (no network requests)" in result.output
    areas.write_text('{"type": "Feature"}', encoding="utf-8")
    broken = runner.invoke(
        cli, ["check-config", "--config", str(config), "--database-url", database.url]
    )
    assert broken.exit_code == 2
    assert "FeatureCollection" in broken.output
    config.write_text("[dashboard]\nlogin_attempts = 0\n")
    refused = runner.invoke(cli, ["check-config", "--config", str(config)])
    assert refused.exit_code == 2 and "login_attempts" in refused.output
