"""The dashboard's JSON API (``/api/...``), described in the app's OpenAPI schema.

Same session cookie as the pages. Reads are scoped to the user's organisation (another
organisation's household or incident is 404, exactly like one that does not exist); every
household or incident read writes a ``ViewAudit`` row. Actions need the ``X-CSRF-Token`` header
(the token comes from ``GET /api/me``) and a role other than viewer.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import Session

from data.tables import StaffUser
from notify.actions import Outcome
from watch.web import maps, operations, queries, reports
from watch.web.auth import api_user, check_csrf, csrf_token, require_actor
from watch.web.i18n import language

router = APIRouter(prefix="/api", tags=["dashboard"])

User = Annotated[StaffUser, Depends(api_user)]
# Ids are 32-bit integers in PostgreSQL; a larger one must be a 422, not a database error (500).
MAX_ID = 2**31 - 1
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID)]
SilenceId = Annotated[int, Path(ge=1, le=MAX_ID)]


class Me(BaseModel):
    username: str
    role: str
    organisation_id: str
    csrf_token: str = Field(description="Send it back in the X-CSRF-Token header on every POST.")


class HouseholdSummary(BaseModel):
    id: str
    name: str
    area: str
    status: queries.HouseholdStatus
    since: datetime | None = Field(description="When the status began (UTC); null if normal.")
    reason: str
    open_incident_ids: list[int]


class UsageSlotOut(BaseModel):
    interval_end: datetime
    kwh: float | None
    band_low: float | None = Field(description="10th percentile of this local slot, 28 days")
    band_high: float | None = Field(description="90th percentile of this local slot, 28 days")


class IncidentOut(BaseModel):
    id: int
    kind: str
    severity: str
    status: str
    reason: str
    opened_at: datetime
    since: datetime | None
    resolved_at: datetime | None
    outcome: str | None


class FindingOut(BaseModel):
    id: int
    kind: str
    severity: str
    score: float
    reason: str
    fired_at: datetime
    incident_id: int | None


class ContactOut(BaseModel):
    id: int
    name: str
    role: str
    phone: str = Field(description="Masked (+81******5678) unless the user is an admin.")
    disabled: bool


class SilenceOut(BaseModel):
    id: int
    reason: str
    starts_at: datetime
    ends_at: datetime
    state: str
    created_by: str


class TvEventOut(BaseModel):
    at: datetime
    event: str
    channel: str | None


class HouseholdDetailOut(HouseholdSummary):
    timezone: str
    current_reasons: list[str]
    usage: list[UsageSlotOut]
    tv_events: list[TvEventOut]
    incidents: list[IncidentOut]
    findings: list[FindingOut]
    contacts: list[ContactOut]
    silences: list[SilenceOut]


class TimelineEventOut(BaseModel):
    at: datetime
    kind: str
    who: str
    detail: dict[str, Any]


class IncidentDetailOut(IncidentOut):
    household_id: str
    household_name: str
    timeline: list[TimelineEventOut]


class ClaimIn(BaseModel):
    contact_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="Who is going; default the household's staff contact.",
    )


class ResolveIn(BaseModel):
    outcome: Outcome
    note: str | None = Field(default=None, max_length=operations.MAX_NOTE)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=operations.MAX_NOTE)


class SilenceIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    ends_at: AwareDatetime


class DurationsOut(BaseModel):
    count: int = Field(description="Incidents that reached the step.")
    median: float | None = Field(description="Minutes from opening.")
    p90: float | None = Field(description="Minutes from opening, 90th percentile.")


class ReportLineOut(BaseModel):
    incident_id: int
    household_id: str
    opened_at: datetime
    kind: str
    outcome: str = Field(description="fine, away, needed_help, false_alarm, other or open.")
    minutes_to_ack: float | None
    minutes_to_claim: float | None
    minutes_to_resolve: float | None


class MonthlyReportOut(BaseModel):
    organisation_id: str
    month: str
    starts_at: datetime
    ends_at: datetime
    incidents_by_kind: dict[str, int]
    outcomes: dict[str, int]
    to_ack: DurationsOut
    to_claim: DurationsOut
    to_resolve: DurationsOut
    sms_segments: int = Field(description="SMS segments sent in the month (Tokyo).")
    incidents: list[ReportLineOut]


class DriftTrendOut(BaseModel):
    recent_days: int
    before_days: int
    recent_kwh_per_day: float
    before_kwh_per_day: float
    kwh_change_pct: float | None
    recent_first_activity: str | None = Field(description="Local HH:MM, median of 7 days.")
    before_first_activity: str | None = Field(description="Local HH:MM, median of 21 days.")
    first_activity_shift_minutes: float | None


class ReviewItemOut(BaseModel):
    household_id: str
    household_name: str
    area: str
    source: str = Field(description="finding (a review finding) or drift (the 28-day trend).")
    reasons: list[str]
    fired_at: datetime | None
    score: float | None
    trend: DriftTrendOut | None


class PointGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: list[float] = Field(description="[longitude, latitude] (WGS 84).")


class AreaGeometry(BaseModel):
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class HouseholdPointProperties(BaseModel):
    kind: Literal["household"]
    id: str
    name: str
    area: str
    status: queries.HouseholdStatus
    since: datetime | None
    reason: str
    reason_localised: str | None = Field(
        default=None,
        description="``reason`` in the dashboard's language (?lang= or its cookie), for display.",
    )
    url: str = Field(description="The household's page.")


class AreaOutlineProperties(BaseModel):
    kind: Literal["area"]
    area: str
    outline: Literal["settings", "households"] = Field(
        description="From the [dashboard] areas_geojson file, or drawn around the households."
    )


class HouseholdFeature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: PointGeometry
    properties: HouseholdPointProperties


class AreaFeature(BaseModel):
    type: Literal["Feature"]
    geometry: AreaGeometry
    properties: AreaOutlineProperties


class AreaMapOut(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[AreaFeature | HouseholdFeature]
    unplaced: int = Field(description="Households that match but have no coordinates.")


class ActionOut(BaseModel):
    done: bool
    status: str


def _csrf(request: Request, x_csrf_token: Annotated[str | None, Header()] = None) -> None:
    check_csrf(request, x_csrf_token)


Csrf = Depends(_csrf)


def _summary(row: queries.HouseholdRow) -> dict[str, Any]:
    h = row.household
    return {
        "id": h.id,
        "name": h.name,
        "area": h.area,
        "status": row.status,
        "since": row.since,
        "reason": row.reason,
        "open_incident_ids": row.open_incident_ids,
    }


def _incident(incident) -> IncidentOut:  # noqa: ANN001
    return IncidentOut.model_validate(incident, from_attributes=True)


@router.get("/me", response_model=Me)
def me(request: Request, user: User) -> Me:
    return Me(
        username=user.username,
        role=user.role.value,
        organisation_id=user.organisation_id,
        csrf_token=csrf_token(request),
    )


@router.get(
    "/households",
    response_model=list[HouseholdSummary],
    responses={200: {"headers": {"X-Total-Count": {"schema": {"type": "integer"}}}}},
)
def list_households(
    request: Request,
    response: Response,
    user: User,
    area: str | None = None,
    status: Annotated[queries.HouseholdStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[dict[str, Any]]:
    """The organisation's households, most urgent first (alert, outage, watch, silenced,
    normal), then the longest waiting; a page of ``limit`` from ``offset``, with the number of
    all that match in the ``X-Total-Count`` header."""
    with Session(request.app.state.engine) as session:
        rows = queries.list_households(
            session, user, request.app.state.clock.now(), area=area, status=status
        )
    response.headers["X-Total-Count"] = str(len(rows))
    return [_summary(r) for r in rows[offset : offset + limit]]


@router.get("/map", response_model=AreaMapOut)
def area_map(
    request: Request,
    user: User,
    area: str | None = None,
    status: Annotated[queries.HouseholdStatus | None, Query()] = None,
) -> Any:
    """The area map as GeoJSON: each area's outline, then the households with coordinates as
    points with their status; the same filters as the list."""
    with Session(request.app.state.engine) as session:
        found = maps.area_map(
            session,
            user,
            request.app.state.clock.now(),
            area=area or None,
            status=status,
            outlines_file=request.app.state.settings.dashboard.areas_geojson,
        )
    # Thousands of points: serialised directly (the schema above still documents the shape).
    return JSONResponse(maps.as_geojson(found, language(request)))


@router.get("/households/{household_id}", response_model=HouseholdDetailOut)
def household(request: Request, user: User, household_id: str) -> dict[str, Any]:
    """A household: 14 days of usage against its usual band, TV events, incidents, findings,
    contacts and silences."""
    now = request.app.state.clock.now()
    with Session(request.app.state.engine) as session:
        detail = queries.household_detail(session, user, household_id, now)
        if detail is None:
            raise HTTPException(status_code=404, detail="no such household")
        queries.record_view(session, user, "household_api", household_id, now)
        session.commit()
        row = detail.status
        return {
            **_summary(row),
            "timezone": detail.household.timezone,
            "current_reasons": detail.current_reasons,
            "usage": [vars(s) for s in detail.usage],
            "tv_events": [
                TvEventOut.model_validate(t, from_attributes=True) for t in detail.tv_events
            ],
            "incidents": [_incident(i) for i in detail.incidents],
            "findings": [
                FindingOut.model_validate(f, from_attributes=True) for f in detail.findings
            ],
            "contacts": [vars(c) for c in detail.contacts],
            "silences": [
                {
                    "id": s.id,
                    "reason": s.reason,
                    "starts_at": s.starts_at,
                    "ends_at": s.ends_at,
                    "state": state.value,
                    "created_by": s.created_by,
                }
                for s, state in detail.silences
            ],
        }


@router.get("/incidents/{incident_id}", response_model=IncidentDetailOut)
def incident(request: Request, user: User, incident_id: IncidentId) -> dict[str, Any]:
    """An incident and its timeline (every step, message, reply and staff action)."""
    now = request.app.state.clock.now()
    with Session(request.app.state.engine) as session:
        found = queries.get_incident(session, user, incident_id)
        if found is None:
            raise HTTPException(status_code=404, detail="no such incident")
        incident, household = found
        events = queries.timeline(session, user, incident)
        queries.record_view(session, user, "incident_api", household.id, now, incident.id)
        session.commit()
        return {
            **_incident(incident).model_dump(),
            "household_id": household.id,
            "household_name": household.name,
            "timeline": [vars(e) for e in events],
        }


Month = Annotated[str, Path(pattern=reports.MONTH_PATTERN, examples=["2025-01"])]


@router.get("/reports/{month}", response_model=MonthlyReportOut)
def monthly_report(request: Request, user: User, month: Month) -> Any:
    """The organisation's incidents opened in a month (Tokyo): by kind and outcome, times to
    acknowledgement, claim and resolution, SMS segments, and one line per incident."""
    with Session(request.app.state.engine) as session:
        report = reports.monthly_report(session, user, month)
    if report is None:
        raise HTTPException(status_code=422, detail="month: YYYY-MM")
    return asdict(report)


@router.get("/review", response_model=list[ReviewItemOut])
def review(request: Request, user: User) -> Any:
    """Households worth a look: review findings, and 28-day drifts in daily use or in the time
    of the first activity, with the numbers that raised them."""
    with Session(request.app.state.engine) as session:
        items = reports.review_list(session, user, request.app.state.clock.now())
    return [asdict(item) for item in items]


def _actionable(request: Request, user: StaffUser, incident_id: int) -> None:
    """404 outside the user's organisation, then 403 for viewers."""
    with Session(request.app.state.engine) as session:
        if queries.get_incident(session, user, incident_id) is None:
            raise HTTPException(status_code=404, detail="no such incident")
    require_actor(user)


def _run(call, **kwargs: Any) -> ActionOut:  # noqa: ANN001
    try:
        result = call(**kwargs)
    except operations.ActionRefused as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return ActionOut(done=result.done, status=result.status)


def _common(request: Request, user: StaffUser, incident_id: int) -> dict[str, Any]:
    _actionable(request, user, incident_id)
    return {
        "engine": request.app.state.engine,
        "user": user,
        "incident_id": incident_id,
        "now": request.app.state.clock.now(),
    }


@router.post("/incidents/{incident_id}/acknowledge", response_model=ActionOut, dependencies=[Csrf])
def acknowledge(request: Request, user: User, incident_id: IncidentId) -> ActionOut:
    """Stop the escalation: staff have it in hand (409 if it is no longer open)."""
    return _run(operations.acknowledge, **_common(request, user, incident_id))


@router.post("/incidents/{incident_id}/claim", response_model=ActionOut, dependencies=[Csrf])
def claim(request: Request, user: User, incident_id: IncidentId, body: ClaimIn) -> ActionOut:
    """Someone is going there; everyone already asked is told."""
    return _run(operations.claim, contact_id=body.contact_id, **_common(request, user, incident_id))


@router.post("/incidents/{incident_id}/resolve", response_model=ActionOut, dependencies=[Csrf])
def resolve(request: Request, user: User, incident_id: IncidentId, body: ResolveIn) -> ActionOut:
    """Close the incident with its outcome; everyone asked is told."""
    return _run(
        operations.resolve,
        outcome=body.outcome.value,
        note=body.note,
        **_common(request, user, incident_id),
    )


@router.post("/incidents/{incident_id}/notes", response_model=ActionOut, dependencies=[Csrf])
def add_note(request: Request, user: User, incident_id: IncidentId, body: NoteIn) -> ActionOut:
    """Add a note to the timeline."""
    return _run(operations.add_note, text=body.text, **_common(request, user, incident_id))


@router.post("/households/{household_id}/silences", dependencies=[Csrf])
def silence(request: Request, user: User, household_id: str, body: SilenceIn) -> dict[str, int]:
    """Mute the household's inactivity escalation for a while ("in hospital until the 14th")."""
    now = request.app.state.clock.now()
    with Session(request.app.state.engine) as session:
        if queries.get_household(session, user, household_id) is None:
            raise HTTPException(status_code=404, detail="no such household")
    require_actor(user)
    try:
        silence_id = operations.silence_household(
            engine=request.app.state.engine,
            user=user,
            household_id=household_id,
            now=now,
            reason=body.reason,
            starts_at=body.starts_at or now,
            ends_at=body.ends_at,
        )
    except operations.ActionRefused as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return {"silence_id": silence_id}


@router.post(
    "/households/{household_id}/silences/{silence_id}/end",
    response_model=ActionOut,
    dependencies=[Csrf],
)
def end_silence(
    request: Request, user: User, household_id: str, silence_id: SilenceId
) -> ActionOut:
    """End a silence now, before its planned end (the resident is home early): escalation
    resumes. 409 if it is already over."""
    with Session(request.app.state.engine) as session:
        if queries.get_silence(session, user, household_id, silence_id) is None:
            raise HTTPException(status_code=404, detail="no such silence")
    require_actor(user)
    try:
        operations.end_silence(
            engine=request.app.state.engine,
            user=user,
            silence_id=silence_id,
            now=request.app.state.clock.now(),
        )
    except operations.ActionRefused as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return ActionOut(done=True, status="ended")
