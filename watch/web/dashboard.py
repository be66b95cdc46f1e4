"""The staff dashboard's pages: login, the area list, a household, an incident, the monthly
report (HTML and CSV) and the review list.

Server-rendered (Jinja2), no JavaScript. Every form posts a CSRF token; every action answers
with a redirect (POST/redirect/GET) and a one-line message kept in the session. Pages use the
same organisation-scoped queries as the API, so another organisation's household is a 404 here
too.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from data.tables import StaffRole, StaffUser
from notify.actions import Outcome
from watch.web import operations, queries, reports
from watch.web.auth import (
    CSRF_FIELD,
    authenticate,
    check_csrf,
    csrf_token,
    end_session,
    page_user,
    require_actor,
    start_session,
)
from watch.web.charts import usage_svg
from watch.web.i18n import LANG_COOKIE, language, translate
from watch.web.reasons import localise_reason

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

User = Annotated[StaffUser, Depends(page_user)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
# Ids are 32-bit integers in PostgreSQL; a larger one must be a 422, not a database error (500).
MAX_ID = 2**31 - 1
IncidentId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
SilenceId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


def _local(when: datetime | None, zone: str = "Asia/Tokyo") -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") if when else ""


templates.env.filters["local"] = _local


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": lambda key: translate(key, lang),
            # A detector's reason, in Japanese on a Japanese page (see watch.web.reasons).
            "reason": lambda text: localise_reason(text, lang),
            "csrf": csrf_token(request),
            "flash": request.session.pop("flash", None),
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _back(request: Request, path: str, message: str) -> RedirectResponse:
    request.session["flash"] = message
    return RedirectResponse(path, status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    token: CsrfField,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    check_csrf(request, token)
    limiter = request.app.state.login_limiter
    now = request.app.state.clock.now()
    address = request.client.host if request.client else "unknown"
    if limiter.blocked(username, address, now):
        return render(request, "login.html", 429, next=_safe_next(next), error="too_many")
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        user = authenticate(session=session, username=username, password=password)
    if user is None:
        limiter.failed(username, address, now)
        return render(request, "login.html", 401, next=_safe_next(next), error="login_failed")
    limiter.succeeded(username, address)
    start_session(request, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, token: CsrfField) -> RedirectResponse:
    check_csrf(request, token)
    end_session(request)
    return RedirectResponse("/login", status_code=303)


#: Rows per page of the area list: the most urgent come first, so staff rarely page on; the
#: map still shows every household.
PAGE_SIZE = 100


@router.get("/")
def area_view(
    request: Request,
    user: User,
    area: str | None = None,
    status: str | None = None,
    page: str = "1",
) -> HTMLResponse:
    wanted = status if status in queries.HouseholdStatus.__members__ else None
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        rows = queries.list_households(
            session,
            user,
            request.app.state.clock.now(),
            area=area or None,
            status=queries.HouseholdStatus(wanted) if wanted else None,
        )
        area_names = queries.areas(session, user)
        stale = queries.stale_sources(session, user)
    lang = language(request)
    now = request.app.state.clock.now()
    dashboard = request.app.state.settings.dashboard
    filters = {k: v for k, v in (("area", area), ("status", wanted)) if v}
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    number = min(int(page), pages) if page.isdigit() and int(page) >= 1 else 1
    first = (number - 1) * PAGE_SIZE

    def page_link(n: int) -> str:
        return "/?" + urlencode({**filters, "page": n})

    return render(
        request,
        "area.html",
        user=user,
        rows=rows[first : first + PAGE_SIZE],
        total=len(rows),
        first=first + 1,
        previous_page=page_link(number - 1) if number > 1 else None,
        next_page=page_link(number + 1) if number < pages else None,
        areas=area_names,
        stale_sources=[
            translate("stale_source_line", lang).format(
                source=s.source,
                since=_local(s.since),
                hours=f"{(now - s.since).total_seconds() / 3600:.1f}",
            )
            for s in stale
        ],
        area=area or "",
        status=wanted or "",
        statuses=list(queries.HouseholdStatus),
        map_src="/api/map" + (f"?{urlencode(filters)}" if filters else ""),
        tile_url=dashboard.tile_url,
        tile_attribution=dashboard.tile_attribution,
        status_labels={
            s.value: translate(f"status_{s.value}", lang) for s in queries.HouseholdStatus
        },
    )


@router.get("/households/{household_id}")
def household_page(request: Request, user: User, household_id: str) -> HTMLResponse:
    now = request.app.state.clock.now()
    lang = language(request)
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        detail = queries.household_detail(session, user, household_id, now)
        if detail is None:
            raise HTTPException(status_code=404)
        queries.record_view(session, user, "household", household_id, now)
        session.commit()
    chart = usage_svg(
        detail.usage,
        [i.opened_at for i in detail.incidents],
        detail.household.timezone,
        title=translate("usage_chart", lang),
        description=translate("usage_desc", lang),
    )
    return render(
        request,
        "household.html",
        user=user,
        detail=detail,
        chart=chart,
        zone=detail.household.timezone,
        tv_events=detail.tv_events[-10:][::-1],
        can_act=user.role != StaffRole.viewer,
        default_until=(now.astimezone(ZoneInfo(detail.household.timezone)) + timedelta(days=7))
        .date()
        .isoformat(),
    )


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, user: User, incident_id: IncidentId) -> HTMLResponse:
    now = request.app.state.clock.now()
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        found = queries.get_incident(session, user, incident_id)
        if found is None:
            raise HTTPException(status_code=404)
        incident, household = found
        events = queries.timeline(session, user, incident)
        contacts = queries.contacts_for(session, user, household.id)
        queries.record_view(session, user, "incident", household.id, now, incident.id)
        session.commit()
    return render(
        request,
        "incident.html",
        user=user,
        incident=incident,
        household=household,
        events=events,
        contacts=contacts,
        zone=household.timezone,
        outcomes=list(Outcome),
        can_act=user.role != StaffRole.viewer,
    )


@router.get("/reports")
def current_report(request: Request, user: User) -> RedirectResponse:
    """This month's report (Tokyo)."""
    local = request.app.state.clock.now().astimezone(ZoneInfo(reports.REPORT_TIMEZONE))
    return RedirectResponse(f"/reports/{local:%Y-%m}", status_code=303)


def _report(request: Request, user: StaffUser, month: str) -> reports.MonthlyReport:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        report = reports.monthly_report(session, user, month)
    if report is None:
        raise HTTPException(status_code=404)
    return report


# Registered before /reports/{month}, which would otherwise take "2025-01.csv" as its month.
@router.get("/reports/{month}.csv")
def report_csv(request: Request, user: User, month: str) -> Response:
    report = _report(request, user, month)
    return Response(
        reports.report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="areawatch-{report.organisation_id}-{month}.csv"'
            )
        },
    )


@router.get("/reports/{month}")
def report_page(request: Request, user: User, month: str) -> HTMLResponse:
    report = _report(request, user, month)
    start = report.starts_at
    previous = (start - timedelta(days=1)).strftime("%Y-%m")
    following = report.ends_at.strftime("%Y-%m")
    return render(
        request,
        "report.html",
        user=user,
        view="report",
        report=report,
        zone=reports.REPORT_TIMEZONE,
        previous=previous,
        following=following,
    )


@router.get("/review")
def review_page(request: Request, user: User) -> HTMLResponse:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        items = reports.review_list(session, user, request.app.state.clock.now())
    # One template for both pages: the brief allows report.html only (see its header).
    return render(request, "report.html", user=user, view="review", items=items)


def _act(request: Request, user: StaffUser, incident_id: int, call, **kwargs: Any) -> Response:  # noqa: ANN001
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        if queries.get_incident(session, user, incident_id) is None:
            raise HTTPException(status_code=404)
    require_actor(user)
    lang = language(request)
    try:
        call(
            engine=request.app.state.engine,
            user=user,
            incident_id=incident_id,
            now=request.app.state.clock.now(),
            **kwargs,
        )
    except operations.ActionRefused as error:
        return _back(request, f"/incidents/{incident_id}", str(error))
    return _back(request, f"/incidents/{incident_id}", translate("done", lang))


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(
    request: Request, user: User, incident_id: IncidentId, token: CsrfField
) -> Response:
    check_csrf(request, token)
    return _act(request, user, incident_id, operations.acknowledge)


@router.post("/incidents/{incident_id}/claim")
def claim(
    request: Request,
    user: User,
    incident_id: IncidentId,
    token: CsrfField,
    contact_id: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, token)
    chosen = int(contact_id) if contact_id.isdigit() and int(contact_id) <= MAX_ID else None
    return _act(request, user, incident_id, operations.claim, contact_id=chosen)


@router.post("/incidents/{incident_id}/resolve")
def resolve(
    request: Request,
    user: User,
    incident_id: IncidentId,
    token: CsrfField,
    outcome: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, token)
    return _act(request, user, incident_id, operations.resolve, outcome=outcome, note=note)


@router.post("/incidents/{incident_id}/notes")
def add_note(
    request: Request,
    user: User,
    incident_id: IncidentId,
    token: CsrfField,
    text: Annotated[str, Form()],
) -> Response:
    check_csrf(request, token)
    return _act(request, user, incident_id, operations.add_note, text=text)


@router.post("/households/{household_id}/silences")
def silence(
    request: Request,
    user: User,
    household_id: str,
    token: CsrfField,
    reason: Annotated[str, Form()],
    until: Annotated[str, Form()],
) -> Response:
    """A silence from now to the end of the chosen local day."""
    check_csrf(request, token)
    now = request.app.state.clock.now()
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        household = queries.get_household(session, user, household_id)
        if household is None:
            raise HTTPException(status_code=404)
        zone = ZoneInfo(household.timezone)
    require_actor(user)
    page = f"/households/{quote(household_id)}"
    try:
        day = date.fromisoformat(until)
    except ValueError:
        return _back(request, page, "until: YYYY-MM-DD")
    ends_at = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    try:
        operations.silence_household(
            engine=request.app.state.engine,
            user=user,
            household_id=household_id,
            now=now,
            reason=reason,
            starts_at=now,
            ends_at=ends_at,
        )
    except operations.ActionRefused as error:
        return _back(request, page, str(error))
    return _back(request, page, translate("done", language(request)))


@router.post("/households/{household_id}/silences/{silence_id}/end")
def end_silence(
    request: Request, user: User, household_id: str, silence_id: SilenceId, token: CsrfField
) -> Response:
    """End a silence now (the resident is home early)."""
    check_csrf(request, token)
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        if queries.get_silence(session, user, household_id, silence_id) is None:
            raise HTTPException(status_code=404)
    require_actor(user)
    page = f"/households/{quote(household_id)}"
    try:
        operations.end_silence(
            engine=request.app.state.engine,
            user=user,
            silence_id=silence_id,
            now=request.app.state.clock.now(),
        )
    except operations.ActionRefused as error:
        return _back(request, page, str(error))
    return _back(request, page, translate("done", language(request)))
