"""Sources, scheduler timings and retention in the settings file, and their mistakes."""

from __future__ import annotations

import pytest

from watch.settings import SettingsError, load_settings


def _load(tmp_path, text, environ=None):
    path = tmp_path / "areawatch.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ=environ or {})


def test_sources_are_read_with_their_defaults(tmp_path):
    (tmp_path / "meter").mkdir()
    settings = _load(
        tmp_path,
        f'[[sources]]\nname = "tepco"\nkind = "readings"\npath = "{tmp_path / "meter"}"\n',
    )
    (source,) = settings.sources
    assert (source.name, source.kind, source.type) == ("tepco", "readings", "drop_folder")
    assert (source.every_minutes, source.settle_seconds) == (30, 10)
    assert (source.archive, source.rejected, source.tz) == ("archive", "rejected", None)
    assert settings.scheduler.escalate_seconds == 60
    assert settings.maintenance.retention_days == 400


def test_scheduler_timings_can_be_shortened_from_the_environment(tmp_path):
    settings = _load(
        tmp_path,
        "[scheduler]\nheartbeat_seconds = 5\n",
        environ={"AREAWATCH_ESCALATE_SECONDS": "2", "AREAWATCH_LEASE_STALE_SECONDS": "3"},
    )
    assert settings.scheduler.escalate_seconds == 2.0
    assert settings.scheduler.heartbeat_seconds == 5
    assert settings.scheduler.lease_stale_seconds == 3.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'name = "a"\nkind = "readings"\npath = "{drop}"\ncolour = 1\n',
            "unknown keys in source 'a'",
        ),
        ('name = "a"\nkind = "readings"\n', "source 'a' needs path"),
        ('name = "a"\nkind = "gas"\npath = "{drop}"\n', "kind must be 'readings' or 'tv'"),
        ('name = "a"\nkind = "tv"\npath = "{drop}/nowhere"\n', "is not a folder"),
        ('name = "a"\nkind = "tv"\npath = "{drop}"\ntype = "ngsi"\n', "type must be 'drop_folder'"),
        ('name = "a"\nkind = "tv"\npath = "{drop}"\nevery_minutes = 0\n', "every_minutes"),
        ('name = "a"\nkind = "tv"\npath = "{drop}"\nsettle_seconds = -1\n', "settle_seconds"),
        ('name = "a"\nkind = "tv"\npath = "{drop}"\narchive = "../x"\n', "plain subfolder"),
        ('name = "a"\nkind = "tv"\npath = "{drop}"\nrejected = "archive"\n', "must be different"),
        ('name = "a"\nkind = "tv"\npath = "{drop}"\ntz = "Mars/Base"\n', "is not an IANA zone"),
    ],
)
def test_a_mistake_in_a_source_is_explained(tmp_path, body, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        _load(tmp_path, "[[sources]]\n" + body.format(drop=tmp_path))


def test_two_sources_with_one_name_are_refused(tmp_path):
    source = f'[[sources]]\nname = "same"\nkind = "tv"\npath = "{tmp_path}"\n'
    with pytest.raises(SettingsError, match="repeated: same"):
        _load(tmp_path, source + source)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('sources = "meter"\n', r"\[\[sources\]\] tables"),
        ('[scheduler]\nmaintain_at = "25:00"\n', "maintain_at must be HH:MM"),
        ("[scheduler]\nescalate_seconds = 0\n", "escalate_seconds must be a number > 0"),
        ("[maintenance]\nretention_days = 0\n", "retention_days"),
        ("[maintenance]\nkeep = 3\n", r"unknown keys in \[maintenance\]"),
    ],
)
def test_a_mistake_in_the_scheduler_or_maintenance_is_explained(tmp_path, text, message):
    with pytest.raises(SettingsError, match=message):
        _load(tmp_path, text)


def test_a_scheduler_timing_from_the_environment_must_be_a_number(tmp_path):
    with pytest.raises(SettingsError, match="AREAWATCH_ESCALATE_SECONDS must be a number"):
        _load(tmp_path, "", environ={"AREAWATCH_ESCALATE_SECONDS": "soon"})
