"""Settings: one TOML file plus environment variables for secrets.

Precedence: environment (``AREAWATCH_*``) over the file over the defaults. Secrets (Twilio
credentials, the database URL with a password) belong in the environment, not the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url

from data.db import DEFAULT_DATABASE_URL


class SettingsError(ValueError):
    """A mistake in the settings, explained so an operator can fix it."""


@dataclass(frozen=True)
class DetectionSettings:
    # How long a slot's reading may be late before the slot counts as "no data".
    data_grace_minutes: int = 90
    # Where households are scored: "local" (this process) or "dask" (a Dask distributed
    # cluster whose scheduler is at ``scheduler``, tcp://HOST:PORT; needs areawatch[dask]).
    engine: str = "local"
    scheduler: str | None = None
    # Score the households with nothing to report together, through the detectors' batch path
    # (the same results, several times faster); false: every household one interval at a time.
    vectorised: bool = True
    # ``areawatch run`` keeps the quiet households' detector state in memory between runs and
    # writes a household's to the database once it has scored this many minutes of data past
    # its checkpoint (and when it stops); 0: read and write every household's state on every
    # run, as ``areawatch detect`` does.
    resident_flush_minutes: int = 360
    # Where ``areawatch run`` writes that state when it stops and reads it back when it starts
    # (``watch.resident_snapshot``), instead of writing it all to the database. None: beside a
    # SQLite database file (``<file>.resident``), off for other databases; "": off (stopping
    # writes the state to the database, as before).
    resident_snapshot_dir: str | None = None


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str | None = None
    auth_token: str | None = None
    from_number: str | None = None
    base_url: str | None = None  # only for tests pointing the client at a local fake
    status_callback: str | None = None


@dataclass(frozen=True)
class SmtpSettings:
    """The ``email`` channel's mail server; the password comes from ``AREAWATCH_SMTP_PASSWORD``."""

    host: str | None = None
    port: int = 587
    sender: str | None = None
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout: float = 10.0


@dataclass(frozen=True)
class SourceSettings:
    """One ``[[sources]]`` table: a drop folder, an HTTP JSON API, an NGSI v2 broker or a Green
    Button (ESPI) feed."""

    name: str
    path: str = ""  # drop_folder only
    kind: str = "readings"  # readings | tv (required for drop_folder and http_json)
    type: str = "drop_folder"  # drop_folder | http_json | ngsi_v2 | green_button
    # The remote ones: the endpoint, and the NAME of the env var holding the bearer token.
    url: str | None = None
    token_env: str | None = None
    page_size: int = 500
    timeout_seconds: float = 10
    # ngsi_v2 only: which entities, which attribute holds the kWh, and the tenant.
    entity_type: str = "SmartMeter"
    attribute: str = "kwh"
    fiware_service: str | None = None
    fiware_service_path: str = "/"
    # green_button only: UsagePoint title, Atom id or self link -> household id (else: the title).
    usage_points: dict[str, str] | None = None
    # green_button only: also re-read intervals this long before the cursor (late corrections).
    lookback_minutes: float = 0
    # No successful pull for this long opens an operator incident; None: 3 x every_minutes.
    stale_after_minutes: float | None = None
    # Minutes between pulls; a fraction is allowed (tests run on seconds).
    every_minutes: float = 30
    # A file modified less than this long ago may still be being written: left for next time.
    settle_seconds: float = 10
    archive: str = "archive"
    rejected: str = "rejected"
    # Zone for timestamps written without an offset; without it such rows are quarantined.
    tz: str | None = None


@dataclass(frozen=True)
class SchedulerSettings:
    """``areawatch run``: the long-running service's timings and its single-instance lease."""

    escalate_seconds: float = 60
    heartbeat_seconds: float = 30
    # A lease not heartbeated for this long belongs to a dead process and may be taken over.
    lease_stale_seconds: float = 120
    maintain_at: str = "03:00"  # local time (``timezone``)


@dataclass(frozen=True)
class MaintenanceSettings:
    # Ingest records and quarantined rows older than this are deleted by ``areawatch maintain``.
    retention_days: int = 400
    # Meter readings older than this are removed by whole calendar months (UTC) by
    # ``areawatch maintain``; None keeps them all. PostgreSQL drops the month's partition.
    readings_retention_days: int | None = None
    # Monthly reading partitions created ahead of time on PostgreSQL.
    reading_partitions_ahead_months: int = 3


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class LoggingSettings:
    """``[logging]``: ``format`` text or json (one object a line); ``level`` of what is kept."""

    format: str = "text"
    level: str = "WARNING"  # ``-v`` lowers it to INFO


@dataclass(frozen=True)
class DashboardSettings:
    """``[dashboard]``: the staff dashboard's sessions, login limit and area map."""

    # How long a login lasts.
    session_hours: float = 12
    # Session cookie over HTTPS only. None: on when the public URL is https (or
    # AREAWATCH_SECURE_COOKIES=1); set true behind a TLS proxy that the server cannot see.
    secure_cookies: bool | None = None
    # At most this many failed logins per (name, address) in any window of this many minutes.
    login_attempts: int = 5
    login_window_minutes: float = 15
    # Map tiles, e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png". None: no tiles, and the
    # map makes no network request at all (points over the areas' outlines only).
    tile_url: str | None = None
    tile_attribution: str = ""
    # GeoJSON polygons of the areas (a feature's "area" property names it). None: each area's
    # outline is the convex hull of its households, with a margin.
    areas_geojson: str | None = None


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    timezone: str = "Asia/Tokyo"
    channel: str = "console"  # console | sms
    # Escalation policies as <name>.toml; households name theirs in the roster's policy column.
    policies_dir: str | None = None
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    sources: tuple[SourceSettings, ...] = ()
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)


def resident_snapshot_dir(settings: Settings) -> Path | None:
    """Where ``areawatch run`` keeps its snapshot of the quiet households' state, or None (off).

    By default beside a SQLite database file, where its operator looks for the service's
    files; for other databases only where the operator says (a snapshot is about 4.1 kB per
    household: several GB for an area, not for a home directory to receive unasked).
    """
    chosen = settings.detection.resident_snapshot_dir
    if chosen is not None:
        return Path(chosen) if chosen else None
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = Path(url.database)
    return database.with_name(database.name + ".resident")


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
    known |= {"sources", "scheduler", "maintenance", "smtp", "dashboard"}
    known |= {"logging"}
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
    smtp_raw = _section(raw, "smtp", SmtpSettings)
    if "AREAWATCH_SMTP_PASSWORD" in environ:
        smtp_raw["password"] = environ["AREAWATCH_SMTP_PASSWORD"]
    if smtp_raw.get("host") and not smtp_raw.get("sender"):
        raise SettingsError('[smtp] needs a sender address (sender = "watch@example.jp")')
    settings = Settings(
        database_url=environ.get(
            "AREAWATCH_DATABASE_URL", raw.get("database_url", DEFAULT_DATABASE_URL)
        ),
        timezone=environ.get("AREAWATCH_TIMEZONE", raw.get("timezone", "Asia/Tokyo")),
        channel=environ.get("AREAWATCH_CHANNEL", raw.get("channel", "console")),
        policies_dir=environ.get("AREAWATCH_POLICIES_DIR", raw.get("policies_dir")),
        detection=detection,
        twilio=TwilioSettings(**twilio_raw),
        smtp=SmtpSettings(**smtp_raw),
        sources=_sources(raw.get("sources", [])),
        scheduler=SchedulerSettings(**_scheduler_section(raw, environ)),
        maintenance=MaintenanceSettings(**_section(raw, "maintenance", MaintenanceSettings)),
        logging=logging_settings(_section(raw, "logging", LoggingSettings), environ),
        dashboard=DashboardSettings(**_section(raw, "dashboard", DashboardSettings)),
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


_SCHEDULER_ENV = {
    "escalate_seconds": "AREAWATCH_ESCALATE_SECONDS",
    "heartbeat_seconds": "AREAWATCH_HEARTBEAT_SECONDS",
    "lease_stale_seconds": "AREAWATCH_LEASE_STALE_SECONDS",
}


def _scheduler_section(raw: dict, environ: dict[str, str]) -> dict:
    section = _section(raw, "scheduler", SchedulerSettings)
    for key, env in _SCHEDULER_ENV.items():
        if env in environ:
            try:
                section[key] = float(environ[env])
            except ValueError as error:
                raise SettingsError(f"{env} must be a number of seconds") from error
    for key in _SCHEDULER_ENV:
        if key in section and not _positive(section[key]):
            raise SettingsError(f"scheduler.{key} must be a number > 0, not {section[key]!r}")
    maintain_at = section.get("maintain_at", SchedulerSettings.maintain_at)
    try:
        hour, minute = (int(part) for part in str(maintain_at).split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError as error:
        raise SettingsError(f"scheduler.maintain_at must be HH:MM, not {maintain_at!r}") from error
    return section


def logging_settings(section: dict, environ: Mapping[str, str]) -> LoggingSettings:
    """``[logging]``, overridden by ``AREAWATCH_LOG_FORMAT`` and ``AREAWATCH_LOG_LEVEL``."""
    section = dict(section)
    for key, env in (("format", "AREAWATCH_LOG_FORMAT"), ("level", "AREAWATCH_LOG_LEVEL")):
        if environ.get(env):
            section[key] = environ[env]
    chosen = LoggingSettings(**section)
    if chosen.format not in LOG_FORMATS:
        raise SettingsError(f"logging.format must be 'text' or 'json', not {chosen.format!r}")
    level = str(chosen.level).upper()
    if level not in LOG_LEVELS:
        raise SettingsError(f"logging.level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    return LoggingSettings(format=chosen.format, level=level)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _sources(raw_sources: object) -> tuple[SourceSettings, ...]:
    if not isinstance(raw_sources, list):
        raise SettingsError("sources must be written as [[sources]] tables")
    fields = set(SourceSettings.__dataclass_fields__)
    sources = []
    for number, raw in enumerate(raw_sources, start=1):
        where = f"[[sources]] #{number}"
        if not isinstance(raw, dict):
            raise SettingsError(f"{where} must be a table")
        if isinstance(raw.get("name"), str):
            where = f"source {raw['name']!r}"
        unknown = set(raw) - fields
        if unknown:
            raise SettingsError(
                f"unknown keys in {where}: {sorted(unknown)}; known: {sorted(fields)}"
            )
        needed = {
            "drop_folder": ("name", "path", "kind"),
            "http_json": ("name", "url", "kind"),
            "ngsi_v2": ("name", "url"),
            "green_button": ("name", "url"),
        }
        # An unknown type is explained by _validate_source, not as a missing key.
        needed_keys = needed.get(raw.get("type", "drop_folder"), ("name",))
        missing = [key for key in needed_keys if key not in raw]
        if missing:
            raise SettingsError(f"{where} needs {', '.join(missing)}")
        source = SourceSettings(**raw)
        _validate_source(source, where)
        sources.append(source)
    names = [source.name for source in sources]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SettingsError(f"source names must be unique; repeated: {', '.join(repeated)}")
    return tuple(sources)


def _validate_source(source: SourceSettings, where: str) -> None:
    if not isinstance(source.name, str) or not source.name.strip() or len(source.name) > 64:
        raise SettingsError(f"{where}: name must be a non-empty text of at most 64 characters")
    if source.type not in {"drop_folder", "http_json", "ngsi_v2", "green_button"}:
        raise SettingsError(
            f"{where}: type must be 'drop_folder', 'http_json', 'ngsi_v2' or 'green_button', "
            f"not {source.type!r}"
        )
    if source.kind not in {"readings", "tv"}:
        raise SettingsError(f"{where}: kind must be 'readings' or 'tv', not {source.kind!r}")
    if source.type == "drop_folder":
        if not isinstance(source.path, str) or not Path(source.path).is_dir():
            raise SettingsError(f"{where}: path {source.path!r} is not a folder")
    else:
        _validate_remote_source(source, where)
    if not _positive(source.every_minutes):
        raise SettingsError(f"{where}: every_minutes must be a number > 0")
    if source.stale_after_minutes is not None and not _positive(source.stale_after_minutes):
        raise SettingsError(f"{where}: stale_after_minutes must be a number > 0")
    if not _positive(source.settle_seconds) and source.settle_seconds != 0:
        raise SettingsError(f"{where}: settle_seconds must be a number >= 0")
    for key in ("archive", "rejected"):
        folder = getattr(source, key)
        if not isinstance(folder, str) or not folder or "/" in folder or folder.startswith("."):
            raise SettingsError(f"{where}: {key} must be a plain subfolder name, not {folder!r}")
    if source.archive == source.rejected:
        raise SettingsError(f"{where}: archive and rejected must be different folders")
    if source.tz is not None:
        try:
            ZoneInfo(source.tz)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise SettingsError(f"{where}: tz {source.tz!r} is not an IANA zone") from error


def _validate_remote_source(source: SourceSettings, where: str) -> None:
    if not isinstance(source.url, str) or not source.url.startswith(("http://", "https://")):
        raise SettingsError(f"{where}: url must start with http:// or https://")
    if source.type in {"ngsi_v2", "green_button"} and source.kind != "readings":
        raise SettingsError(f"{where}: an {source.type} source gives readings, not {source.kind!r}")
    points = source.usage_points
    if points is not None and (
        not isinstance(points, dict)
        or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in points.items())
    ):
        raise SettingsError(f"{where}: usage_points must map names to household ids (text)")
    if not _positive(source.lookback_minutes) and source.lookback_minutes != 0:
        raise SettingsError(f"{where}: lookback_minutes must be a number >= 0")
    if source.token_env is not None and (
        not isinstance(source.token_env, str) or not source.token_env.strip()
    ):
        raise SettingsError(f"{where}: token_env must name an environment variable")
    size = source.page_size
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 10_000:
        raise SettingsError(f"{where}: page_size must be a whole number from 1 to 10000")
    if not _positive(source.timeout_seconds):
        raise SettingsError(f"{where}: timeout_seconds must be a number > 0")


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
    if settings.detection.engine not in ("local", "dask"):
        raise SettingsError(
            f"detection.engine must be 'local' or 'dask', not {settings.detection.engine!r}"
        )
    if not isinstance(settings.detection.vectorised, bool):
        raise SettingsError(
            f"detection.vectorised must be true or false, not {settings.detection.vectorised!r}"
        )
    flush = settings.detection.resident_flush_minutes
    if not isinstance(flush, int) or isinstance(flush, bool) or flush < 0:
        raise SettingsError(
            f"detection.resident_flush_minutes must be a whole number >= 0, not {flush!r}"
        )
    snapshots = settings.detection.resident_snapshot_dir
    if snapshots is not None and not isinstance(snapshots, str):
        raise SettingsError(f"detection.resident_snapshot_dir must be a path, not {snapshots!r}")
    if snapshots and Path(snapshots).exists() and not Path(snapshots).is_dir():
        raise SettingsError(f"detection.resident_snapshot_dir {snapshots!r} is not a folder")
    if settings.detection.engine == "dask" and not settings.detection.scheduler:
        raise SettingsError("detection.engine 'dask' needs detection.scheduler = 'tcp://HOST:PORT'")
    retention = settings.maintenance.retention_days
    if not isinstance(retention, int) or isinstance(retention, bool) or retention < 1:
        raise SettingsError("maintenance.retention_days must be a whole number of days >= 1")
    readings_retention = settings.maintenance.readings_retention_days
    if readings_retention is not None and (
        not isinstance(readings_retention, int)
        or isinstance(readings_retention, bool)
        or readings_retention < 31
    ):
        raise SettingsError(
            "maintenance.readings_retention_days must be a whole number of days >= 31 "
            "(detection needs weeks of history), or left out to keep every reading"
        )
    ahead = settings.maintenance.reading_partitions_ahead_months
    if not isinstance(ahead, int) or isinstance(ahead, bool) or not 1 <= ahead <= 24:
        raise SettingsError("maintenance.reading_partitions_ahead_months must be from 1 to 24")
    _validate_dashboard(settings.dashboard)


def _validate_dashboard(dashboard: DashboardSettings) -> None:
    if not _positive(dashboard.session_hours):
        raise SettingsError("dashboard.session_hours must be a number > 0")
    if dashboard.secure_cookies is not None and not isinstance(dashboard.secure_cookies, bool):
        raise SettingsError("dashboard.secure_cookies must be true or false")
    attempts = dashboard.login_attempts
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise SettingsError("dashboard.login_attempts must be a whole number >= 1")
    if not _positive(dashboard.login_window_minutes):
        raise SettingsError("dashboard.login_window_minutes must be a number > 0")
    tiles = dashboard.tile_url
    if tiles is not None and (
        not isinstance(tiles, str)
        or not tiles.startswith(("https://", "http://"))
        or not all(part in tiles for part in ("{z}", "{x}", "{y}"))
    ):
        raise SettingsError(
            "dashboard.tile_url must be an http(s) URL with {z}, {x} and {y} in it, such as "
            "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
        )
    if not isinstance(dashboard.tile_attribution, str):
        raise SettingsError("dashboard.tile_attribution must be text")
    outlines = dashboard.areas_geojson
    if outlines is not None and (not isinstance(outlines, str) or not Path(outlines).is_file()):
        raise SettingsError(f"dashboard.areas_geojson {outlines!r} is not a file")
