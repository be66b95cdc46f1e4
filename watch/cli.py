"""The ``areawatch`` command. This module is the output layer: it parses, calls, and prints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from watch import logs
from watch.backtest.command import backtest as backtest_command
from watch.settings import Settings, SettingsError, load_settings, logging_settings

app = typer.Typer(
    help="AreaWatch: area-wide watch over older people who live alone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
ingest_app = typer.Typer(
    help="Load files into the database (idempotent; bad rows quarantined).", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")
config_app = typer.Typer(help="The settings file and environment.", no_args_is_help=True)
app.add_typer(config_app, name="config")
console = Console()

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Settings file (TOML).")]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides AREAWATCH_DATABASE_URL and the settings file."),
]


def _settings(config: Path | None, database_url: str | None) -> Settings:
    try:
        settings = load_settings(config)
    except SettingsError as error:
        console.print(f"[red]Settings error:[/red] {error}")
        raise typer.Exit(2) from error
    if database_url:
        settings = Settings(**{**settings.__dict__, "database_url": database_url})
    # The settings file may choose the log format: applied as soon as it is read.
    logs.configure(**settings.logging.__dict__, verbose=_verbose)
    return settings


_verbose = False


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    global _verbose
    _verbose = verbose
    try:
        chosen = logging_settings({}, os.environ)  # the environment's, until a file is read
    except SettingsError as error:
        console.print(f"[red]Settings error:[/red] {error}")
        raise typer.Exit(2) from error
    logs.configure(**chosen.__dict__, verbose=verbose)


@config_app.command("check")
@app.command("check-config")
def check_config(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Validate the settings (file and environment) and say what AreaWatch will do with them.

    Secrets are reported as set or missing, never shown. Also ``areawatch config check``.
    Example: areawatch check-config --config /etc/areawatch/areawatch.toml
    """
    from data.db import make_engine

    settings = _settings(config, database_url)
    backend = settings.database_url.split(":", 1)[0]
    console.print(
        f"Settings are valid. Database: {backend}; time zone: {settings.timezone}; "
        f"messages go to: {settings.channel}.",
        highlight=False,
    )
    if settings.channel == "sms":
        console.print("Twilio: credentials set; replies verified against the auth token.")
    console.print(f"Email: {'via ' + settings.smtp.host if settings.smtp.host else 'off'}.")
    _check_dashboard(settings)
    for source in settings.sources:
        where = source.path or source.url
        console.print(
            f"Source {source.name!r}: {source.type} {source.kind} from {where}, "
            f"every {source.every_minutes} min.",
            highlight=False,
        )
    try:
        with make_engine(settings.database_url).connect():
            pass
    except Exception as error:  # noqa: BLE001  (any failure: tell the operator, exit non-zero)
        console.print(f"[red]The database cannot be reached: {type(error).__name__}[/red]")
        raise typer.Exit(1) from error
    console.print("The database answers.")


def _check_dashboard(settings: Settings) -> None:
    from watch.web.areas import OutlineError, load_outlines

    dashboard = settings.dashboard
    cookies = {None: "secure when the public URL is https", True: "secure", False: "not secure"}
    console.print(
        f"Dashboard: logins last {dashboard.session_hours:g} h, cookies "
        f"{cookies[dashboard.secure_cookies]}; at most {dashboard.login_attempts} failed logins "
        f"per {dashboard.login_window_minutes:g} min.",
        highlight=False,
    )
    outlines = "drawn around the households"
    if dashboard.areas_geojson:
        try:
            areas = load_outlines(dashboard.areas_geojson)
        except OutlineError as error:
            console.print(f"[red]Settings error:[/red] dashboard.areas_geojson: {error}")
            raise typer.Exit(2) from error
        outlines = f"{len(areas)} from {dashboard.areas_geojson}"
    tiles = dashboard.tile_url or "none (no network requests)"
    console.print(f"Map: tiles {tiles}; area outlines {outlines}.", highlight=False)


@app.command()
def init(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Create or upgrade the database schema.

    Example: areawatch init --database-url sqlite:///areawatch.db
    """
    from watch.app import App

    App.from_settings(_settings(config, database_url)).init_db()
    console.print("Database is ready.")


def _print_ingest(report) -> None:  # noqa: ANN001
    table = Table(title=f"Ingest of {report.source} ({report.kind})")
    for column in ("read", "inserted", "unchanged", "corrected", "quarantined"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(getattr(report, f"rows_{c}"))
            for c in ("read", "inserted", "unchanged", "corrected", "quarantined")
        )
    )
    console.print(table)
    if report.quarantined:
        bad = Table(title="Quarantined rows (first 20)")
        bad.add_column("line", justify="right")
        bad.add_column("reason")
        for row in report.quarantined[:20]:
            bad.add_row(str(row.line_number), row.reason)
        console.print(bad)


def _ingest(kind: str, files: list[Path], tz: str | None, config, database_url) -> None:  # noqa: ANN001
    from watch.app import App

    application = App.from_settings(_settings(config, database_url))
    nothing = True
    for path in files:
        try:
            report = application.ingest(kind, path, tz=tz)
        except (ValueError, OSError) as error:
            console.print(f"[red]{path}: {error}[/red]")
            continue
        _print_ingest(report)
        nothing = nothing and report.nothing_read
    if nothing:
        raise typer.Exit(1)


TzOption = Annotated[
    str | None,
    typer.Option(
        "--tz",
        help="Zone for timestamps without a UTC offset (e.g. Asia/Tokyo); "
        "without it such rows are quarantined.",
    ),
]
FilesArgument = Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)]


@ingest_app.command("readings")
def ingest_readings(
    files: FilesArgument,
    tz: TzOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Load smart-meter readings (household_id,timestamp,kwh; CSV or Parquet).

    Example: areawatch ingest readings meter-2025-01-06.csv
    """
    _ingest("readings", files, tz, config, database_url)


@ingest_app.command("tv")
def ingest_tv(
    files: FilesArgument,
    tz: TzOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Load TV set-top-box events (household_id,timestamp,event[,channel]).

    Example: areawatch ingest tv catv-2025-01-06.csv
    """
    _ingest("tv", files, tz, config, database_url)


@ingest_app.command("roster")
def ingest_roster(
    files: FilesArgument, config: ConfigOption = None, database_url: DatabaseOption = None
) -> None:
    """Load households.csv and/or contacts.csv (recognised by their header).

    Example: areawatch ingest roster households.csv contacts.csv
    """
    _ingest("roster", files, None, config, database_url)


@app.command()
def detect(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Where to score: local (this process) or dask (a Dask cluster). "
            "Overrides detection.engine in the settings.",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="The Dask scheduler, tcp://HOST:PORT. Overrides detection.scheduler.",
        ),
    ] = None,
) -> None:
    """Score new readings, record findings, open or close incidents.

    Safe to run from cron every 30 minutes; a re-run after a crash resumes where it stopped.
    Example: areawatch detect, or on a cluster: areawatch detect --engine dask --scheduler
    tcp://10.0.0.5:8786
    """
    from dataclasses import replace

    from watch.app import App
    from watch.engines import EngineUnavailable

    settings = _settings(config, database_url)
    detection = settings.detection
    if engine is not None or scheduler is not None:
        detection = replace(
            detection,
            engine=engine or ("dask" if scheduler else detection.engine),
            scheduler=scheduler or detection.scheduler,
        )
        settings = replace(settings, detection=detection)
    application = App.from_settings(settings)
    try:
        report = application.detect()
    except EngineUnavailable as error:
        console.print(f"[red]Cannot score on {detection.engine}:[/red] {error}", highlight=False)
        raise typer.Exit(2) from error
    console.print(
        f"Scored {report.slots_scored} slots for {report.households_scored} households; "
        f"{len(report.findings)} findings, {len(report.incidents_opened)} incidents opened, "
        f"{len(report.incidents_resolved)} resolved."
    )


@app.command()
def escalate(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Run the due escalation steps and send pending messages (run every minute).

    Example: areawatch escalate
    """
    from watch.app import App

    application = App.from_settings(_settings(config, database_url))
    report = application.escalate()
    console.print(f"Escalation: {report}")


@app.command()
def pull(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Pull every configured source (drop folder) once, then stop.

    Fails only if every source failed. Safe to overlap with itself and with ``areawatch run``.
    Example: areawatch pull --config /etc/areawatch.toml
    """
    from watch.app import App
    from watch.jobs import pull_all

    application = App.from_settings(_settings(config, database_url))
    reports = pull_all(application)
    if not reports:
        console.print("No sources configured ([[sources]] in the settings file).", markup=False)
        return
    table = Table(title="Pull")
    for column in ("source", "loaded", "rejected", "waiting", "inserted", "quarantined", "error"):
        table.add_column(column, justify="left" if column in ("source", "error") else "right")
    for report in reports:
        table.add_row(
            report.source,
            str(len(report.files_loaded)),
            str(len(report.files_rejected)),
            str(len(report.files_waiting)),
            str(report.rows_inserted),
            str(report.rows_quarantined),
            report.error or ("busy: pulled by another process" if report.busy else ""),
        )
    console.print(table)
    if all(report.failed for report in reports):
        raise typer.Exit(1)


@app.command("run")
def run_scheduler(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Run the scheduler in the foreground: pulls, detection, escalation, daily maintenance.

    One per database; a second one refuses to start. Stop it with SIGTERM (systemd) or Ctrl-C:
    the job in hand finishes first.
    Example: areawatch run --config /etc/areawatch.toml
    """
    from watch.app import App
    from watch.scheduler import LeaseHeld, run_service

    application = App.from_settings(_settings(config, database_url))
    try:
        code = run_service(application)
    except LeaseHeld as error:
        console.print(f"[red]Not starting:[/red] {error}", highlight=False)
        raise typer.Exit(1) from error
    if code:
        console.print("[red]Stopped: another scheduler took over the lease.[/red]")
    raise typer.Exit(code)


@app.command()
def maintain(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Delete ingest records and quarantined rows older than maintenance.retention_days.

    Example: areawatch maintain
    """
    from watch.app import App
    from watch.jobs import maintain as run_maintenance

    report = run_maintenance(App.from_settings(_settings(config, database_url)))
    console.print(
        f"Maintenance: deleted {report.ingests_deleted} ingest records and "
        f"{report.quarantined_rows_deleted} quarantined rows older than "
        f"{report.retention_days} days."
    )


@app.command()
def status(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Show open incidents, households without data, and the last ingests.

    Example: areawatch status
    """
    from watch.app import App
    from watch.views import render_status

    application = App.from_settings(_settings(config, database_url))
    render_status(console, application.status())


@app.command("check-policy")
def check_policy(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
) -> None:
    """Validate escalation policy files (TOML) and show their steps.

    Example: areawatch check-policy policies/default.toml
    """
    from notify.policy import PolicyError, load_policy

    failed = False
    for path in files:
        try:
            policy = load_policy(path)
        except PolicyError as error:
            console.print(f"[red]{path}: {error}[/red]")
            failed = True
            continue
        steps = ", ".join(f"{s.kind.value} (wait {s.wait} min)" for s in policy.steps)
        console.print(f"{path}: policy {policy.name!r} is valid: {steps}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command("load-policy")
def load_policy_command(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    organisation: Annotated[str, typer.Option(help="The organisation the policies are for.")] = (
        "default"
    ),
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Validate escalation policy files and load them into the database for an organisation.

    Households use the policy their roster row names; incidents already open keep the policy
    they opened with. Example: areawatch load-policy policies/town.toml --organisation midori
    """
    from sqlmodel import Session

    from notify.policy import PolicyError
    from notify.policy_store import store_policy
    from watch.app import App

    application = App.from_settings(_settings(config, database_url))
    failed = False
    for path in files:
        with Session(application.engine) as session:
            try:
                policy, replaced = store_policy(
                    session=session,
                    organisation_id=organisation,
                    path=path,
                    now=application.clock.now(),
                )
            except PolicyError as error:
                console.print(f"[red]{path}: {error}[/red]")
                failed = True
                continue
            session.commit()
        verb = "replaced" if replaced else "loaded"
        console.print(f"{path}: policy {policy.name!r} {verb} for {organisation}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def timeline(
    incident_id: Annotated[int, typer.Argument(help="The incident's number.")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show an incident's audit trail: every step, message, delivery, reply and outcome.

    Example: areawatch timeline 12
    """
    from watch.app import App
    from watch.views import render_timeline

    application = App.from_settings(_settings(config, database_url))
    if not render_timeline(console, application.engine, incident_id):
        console.print(f"[red]No incident {incident_id}.[/red]")
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    public_url: Annotated[
        str | None,
        typer.Option(help="The URL Twilio calls (behind a proxy), used to verify signatures."),
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Serve the staff dashboard and its JSON API, the Twilio webhooks, /healthz and /metrics.

    Example: areawatch serve --port 8000 --public-url https://watch.example.jp
    """
    from watch.web.server import serve as run_server

    run_server(
        settings=_settings(config, database_url), host=host, port=port, public_base_url=public_url
    )


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo database.")] = Path(
        "areawatch-demo"
    ),
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="Then open the demo data in the dashboard, with a demo login."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --serve: port to listen on.")] = 8000,
) -> None:
    """Replay the bundled sample (24 households x 8 weeks) through the whole pipeline.

    Creates a fresh SQLite database in WORKDIR, loads the sample roster, readings and TV events,
    replays them with a simulated clock, and prints households, incidents and every message.
    With --serve, then serves the dashboard on that database (clock stopped at the replay's end)
    and prints a demo account. Example: areawatch demo --workdir /tmp/aw --serve --port 8000
    """
    import sys

    from watch.demo import create_demo_login, demo_server, run_demo
    from watch.views import render_demo

    result = run_demo(workdir=workdir, progress=console)
    # Piped into a file or a pager, rich would squeeze the tables to 80 columns.
    render_demo(console if console.is_terminal else Console(width=150), result)
    if not serve:
        console.print("See it in the dashboard: areawatch demo --serve", highlight=False)
        return
    username, password = create_demo_login(database_url=result.database_url, now=result.end)
    server = demo_server(result=result, host=host, port=port)
    console.print(
        f"\nDashboard: http://{host}:{port}/\n"
        f"Demo login (this demo database only): user {username}  password {password}\n"
        "The clock is stopped at the end of the replay. Ctrl-C stops the server.",
        highlight=False,
        soft_wrap=True,
    )
    sys.stdout.flush()
    server.run()


# The backtest's interface is stable (other tools call it), so it lives in its own module.
app.command("backtest")(backtest_command)


# -- dashboard accounts ----------------------------------------------------------------------
user_app = typer.Typer(help="Dashboard accounts for welfare staff.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="The login name.")],
    organisation: Annotated[str, typer.Option(help="The organisation whose households it sees.")],
    role: Annotated[str, typer.Option(help="admin | staff | viewer")] = "staff",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a dashboard user (prompts for the password unless --password-stdin).

    Example: areawatch user add sato --organisation nerima --role staff
    """
    import sys

    from sqlmodel import Session

    from data.db import make_engine
    from data.tables import Organisation, StaffRole
    from watch.clock import SystemClock
    from watch.web.auth import create_user

    if role not in StaffRole.__members__:
        console.print(f"[red]role must be one of {', '.join(StaffRole.__members__)}[/red]")
        raise typer.Exit(2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(_settings(config, database_url).database_url)
    try:
        with Session(engine) as session:
            if session.get(Organisation, organisation) is None:
                console.print(f"[red]No organisation {organisation!r}.[/red]")
                raise typer.Exit(2)
            try:
                create_user(
                    session=session,
                    organisation_id=organisation,
                    username=username,
                    password=password,
                    role=role,
                    now=SystemClock().now(),
                )
            except ValueError as error:
                console.print(f"[red]{error}[/red]")
                raise typer.Exit(2) from error
            session.commit()
    finally:
        engine.dispose()
    console.print(f"User {username} ({role}) added to {organisation}.")


if __name__ == "__main__":  # pragma: no cover
    app()
