"""Settings: one TOML file plus environment variables for secrets.

Precedence: environment (``AREAWATCH_*``) over the file over the defaults. Secrets (Twilio
credentials, the database URL with a password) belong in the environment, not the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from data.db import DEFAULT_DATABASE_URL


class SettingsError(ValueError):
    """A mistake in the settings, explained so an operator can fix it."""


@dataclass(frozen=True)
class DetectionSettings:
    # How long a slot's reading may be late before the slot counts as "no data".
    data_grace_minutes: int = 90


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str | None = None
    auth_token: str | None = None
    from_number: str | None = None
    base_url: str | None = None  # only for tests pointing the client at a local fake
    status_callback: str | None = None


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    timezone: str = "Asia/Tokyo"
    channel: str = "console"  # console | sms
    # Escalation policies as <name>.toml; households name theirs in the roster's policy column.
    policies_dir: str | None = None
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    raw: dict = {}
    path = path or (Path(environ["AREAWATCH_CONFIG"]) if "AREAWATCH_CONFIG" in environ else None)
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise SettingsError(f"settings file {path} does not exist") from error
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"settings file {path} is not valid TOML: {error}") from error
    known = {"database_url", "timezone", "channel", "policies_dir", "detection", "twilio"}
    unknown = set(raw) - known
    if unknown:
        raise SettingsError(
            f"unknown settings: {', '.join(sorted(unknown))}; known: {sorted(known)}"
        )

    detection = DetectionSettings(**_section(raw, "detection", DetectionSettings))
    twilio_raw = _section(raw, "twilio", TwilioSettings)
    for key, env in [
        ("account_sid", "TWILIO_ACCOUNT_SID"),
        ("auth_token", "TWILIO_AUTH_TOKEN"),
        ("from_number", "AREAWATCH_TWILIO_FROM"),
    ]:
        if env in environ:
            twilio_raw[key] = environ[env]
    settings = Settings(
        database_url=environ.get(
            "AREAWATCH_DATABASE_URL", raw.get("database_url", DEFAULT_DATABASE_URL)
        ),
        timezone=environ.get("AREAWATCH_TIMEZONE", raw.get("timezone", "Asia/Tokyo")),
        channel=environ.get("AREAWATCH_CHANNEL", raw.get("channel", "console")),
        policies_dir=environ.get("AREAWATCH_POLICIES_DIR", raw.get("policies_dir")),
        detection=detection,
        twilio=TwilioSettings(**twilio_raw),
    )
    _validate(settings)
    return settings


def _section(raw: dict, name: str, cls: type) -> dict:
    section = raw.get(name, {})
    if not isinstance(section, dict):
        raise SettingsError(f"[{name}] must be a table")
    fields = set(cls.__dataclass_fields__)
    unknown = set(section) - fields
    if unknown:
        raise SettingsError(f"unknown keys in [{name}]: {sorted(unknown)}; known: {sorted(fields)}")
    return dict(section)


def _validate(settings: Settings) -> None:
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise SettingsError(f"timezone {settings.timezone!r} is not an IANA zone") from error
    if settings.channel not in {"console", "sms"}:
        raise SettingsError(f"channel must be 'console' or 'sms', not {settings.channel!r}")
    if settings.channel == "sms":
        missing = [
            k
            for k in ("account_sid", "auth_token", "from_number")
            if not getattr(settings.twilio, k)
        ]
        if missing:
            raise SettingsError(
                "channel 'sms' needs Twilio credentials: set TWILIO_ACCOUNT_SID, "
                "TWILIO_AUTH_TOKEN and AREAWATCH_TWILIO_FROM (missing: " + ", ".join(missing) + ")"
            )
    if settings.policies_dir is not None and not Path(settings.policies_dir).is_dir():
        raise SettingsError(f"policies_dir {settings.policies_dir!r} is not a folder")
    if settings.detection.data_grace_minutes < 0:
        raise SettingsError("detection.data_grace_minutes must be >= 0")
