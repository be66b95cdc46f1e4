"""A household's usage as a small server-side SVG: no JavaScript, readable by screen readers.

The usual band (10th–90th percentile of each local time of day) is a shaded area, the
household's own use a line over it (broken where readings are missing), and each incident a
red mark at the time it opened. Day lines are labelled with the local date.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

from watch.web.queries import UsageSlot

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 28
_ONE_DAY = timedelta(days=1)


def usage_svg(
    usage: list[UsageSlot],
    incident_times: list[datetime],
    zone: str,
    *,
    title: str,
    description: str,
) -> Markup:
    """The chart as inline SVG markup (safe to put into a template as is).

    >>> from datetime import UTC, timedelta
    >>> t0 = datetime(2025, 1, 6, tzinfo=UTC)
    >>> slots = [UsageSlot(t0 + timedelta(minutes=30 * i), 0.2, 0.1, 0.3) for i in range(4)]
    >>> svg = usage_svg(slots, [t0], "Asia/Tokyo", title="t", description="d")
    >>> svg.count("<polyline"), svg.count('class="incident"')
    (1, 1)
    """
    if not usage:
        return Markup("")
    start, end = usage[0].interval_end, usage[-1].interval_end
    span = max((end - start).total_seconds(), 1.0)
    top = max([s.kwh or 0 for s in usage] + [s.band_high or 0 for s in usage] + [0.1]) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(when: datetime) -> float:
        return LEFT + plot_w * (when - start).total_seconds() / span

    def y(kwh: float) -> float:
        return TOP + plot_h * (1 - kwh / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" class="usage-chart">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(description)}</desc>',
    ]
    parts += _days(start, end, zone, x)
    parts += _band(usage, x, y)
    parts += _line(usage, x, y)
    for when in incident_times:
        if start <= when <= end:
            parts.append(
                f'<line class="incident" x1="{x(when):.1f}" x2="{x(when):.1f}" y1="{TOP}" '
                f'y2="{TOP + plot_h}"><title>{when.astimezone(ZoneInfo(zone)):%m-%d %H:%M}'
                "</title></line>"
            )
    parts.append(
        f'<text class="axis" x="2" y="{TOP + 10}">{top:.2f}</text>'
        f'<text class="axis" x="2" y="{TOP + plot_h}">0 kWh</text>'
    )
    parts.append("</svg>")
    # Every interpolated text (title, description) went through escape() above.
    return Markup("".join(parts))  # noqa: S704


def _days(start: datetime, end: datetime, zone: str, x) -> list[str]:  # noqa: ANN001
    tz = ZoneInfo(zone)
    out = []
    day = start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= end:
        if day >= start:
            px = x(day)
            out.append(
                f'<line class="day" x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" '
                f'y2="{HEIGHT - BOTTOM}"/><text class="axis" x="{px + 2:.1f}" '
                f'y="{HEIGHT - 10}">{day:%m/%d}</text>'
            )
        day = (day.replace(tzinfo=None) + _ONE_DAY).replace(tzinfo=tz)
    return out


def _band(usage: list[UsageSlot], x, y) -> list[str]:  # noqa: ANN001
    """One polygon per run of slots that have a band."""
    out, run = [], []
    for slot in [*usage, None]:
        if slot is not None and slot.band_low is not None and slot.band_high is not None:
            run.append(slot)
            continue
        if len(run) > 1:
            upper = " ".join(f"{x(s.interval_end):.1f},{y(s.band_high):.1f}" for s in run)
            lower = " ".join(f"{x(s.interval_end):.1f},{y(s.band_low):.1f}" for s in reversed(run))
            out.append(f'<polygon class="band" points="{upper} {lower}"/>')
        run = []
    return out


def _line(usage: list[UsageSlot], x, y) -> list[str]:  # noqa: ANN001
    """One polyline per run of slots with a reading: a gap stays a gap."""
    out, run = [], []
    for slot in [*usage, None]:
        if slot is not None and slot.kwh is not None:
            run.append(f"{x(slot.interval_end):.1f},{y(slot.kwh):.1f}")
            continue
        if len(run) > 1:
            out.append(f'<polyline class="usage" points="{" ".join(run)}"/>')
        run = []
    return out
