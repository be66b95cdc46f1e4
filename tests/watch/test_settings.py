"""Settings: one TOML file, secrets from the environment, mistakes explained."""

from __future__ import annotations

import pytest

from watch.app import _channels_for
from watch.settings import SettingsError, load_settings


def _write(tmp_path, text):
    path = tmp_path / "areawatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_environment_wins_over_the_file_and_secrets_come_from_it(tmp_path):
    path = _write(tmp_path, 'database_url = "sqlite:///file.db"\ntimezone = "Asia/Tokyo"\n')
    settings = load_settings(
        path,
        environ={
            "AREAWATCH_DATABASE_URL": "postgresql://db/aw",
            "TWILIO_ACCOUNT_SID": "AC123",
            "TWILIO_AUTH_TOKEN": "secret",
            "AREAWATCH_TWILIO_FROM": "+15550001111",
        },
    )
    assert settings.database_url == "postgresql://db/aw"
    assert (settings.twilio.account_sid, settings.twilio.auth_token) == ("AC123", "secret")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('colour = "blue"\n', "unknown settings: colour"),
        ('timezone = "Mars/Olympus"\n', "is not an IANA zone"),
        ('channel = "sms"\n', "needs Twilio credentials"),
        ("[detection]\ngrace = 5\n", "unknown keys in [detection]"),
        ('policies_dir = "/nowhere/at/all"\n', "is not a folder"),
        ("database_url = \n", "not valid TOML"),
        ("[detection]\nresident_flush_minutes = -1\n", "resident_flush_minutes must be"),
        ('[detection]\nresident_flush_minutes = "6h"\n', "resident_flush_minutes must be"),
    ],
)
def test_each_mistake_is_explained(tmp_path, text, message):
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(_write(tmp_path, text), environ={})


def test_sms_settings_give_twilio_sms_and_voice_with_keypresses_sent_to_our_webhook(tmp_path):
    path = _write(
        tmp_path,
        'channel = "sms"\n[twilio]\nstatus_callback = "https://watch.example.jp/twilio/status"\n',
    )
    settings = load_settings(
        path,
        environ={
            "TWILIO_ACCOUNT_SID": "AC123",
            "TWILIO_AUTH_TOKEN": "secret",
            "AREAWATCH_TWILIO_FROM": "+15550001111",
        },
    )
    channels = _channels_for(settings)
    assert type(channels["sms"]).__name__ == "TwilioSmsChannel"
    assert channels["voice"].gather_url == "https://watch.example.jp/twilio/voice/gather"


def test_without_sms_settings_every_message_goes_to_the_console():
    channels = _channels_for(load_settings(None, environ={}))
    assert {type(c).__name__ for c in channels.values()} == {"ConsoleChannel"}
    assert "email" not in channels


def test_an_smtp_server_adds_the_email_channel_with_the_password_from_the_environment(tmp_path):
    path = _write(tmp_path, '[smtp]\nhost = "mail.example.jp"\nsender = "watch@example.jp"\n')
    settings = load_settings(path, environ={"AREAWATCH_SMTP_PASSWORD": "pw"})
    assert settings.smtp.password == "pw"
    channels = _channels_for(settings)
    assert type(channels["email"]).__name__ == "EmailChannel"


def test_an_smtp_server_without_a_sender_is_explained(tmp_path):
    with pytest.raises(SettingsError, match="needs a sender"):
        load_settings(_write(tmp_path, '[smtp]\nhost = "mail.example.jp"\n'), environ={})
