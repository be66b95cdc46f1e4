"""The detectors' reasons in the dashboard's language.

Detectors explain a score in English clauses joined by "; " (``explain_one``); ``detectors/``
knows nothing of the dashboard, so the Japanese rendering lives here. Each clause a detector (or
the review list's drift check) writes has one pattern below; a recognised clause is rendered in
Japanese with the same numbers and clock times, anything else (a silence's reason typed by
staff, a reason from an older version) is shown as it was written. Nothing here raises: the
worst case is the English text. A test feeds the detectors' real output through this module, so
a change of wording in ``detectors/`` fails there instead of showing English on the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable

CLAUSE_SEPARATOR = "; "
JAPANESE_SEPARATOR = "。"

_DAY_TYPE = {"weekdays": "平日", "weekends": "土日"}
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_CLOCK = r"\d{1,2}:\d{2}"


def _change(percent: str) -> str:
    """ "-50.0" -> "50.0%減", "+35.0" -> "35.0%増"."""
    value = percent.lstrip("+-")
    return f"{value}%減" if percent.startswith("-") else f"{value}%増"


Render = Callable[[re.Match[str]], str]

# (pattern matching one whole clause, its Japanese). The first that matches wins.
_CLAUSES: list[tuple[re.Pattern[str], Render]] = [
    # detectors/inactivity.py QuietStretchDetector.explain_one
    (
        re.compile(rf"no activity since (?P<clock>{_CLOCK}) \((?P<hours>{_NUMBER}) h\)"),
        lambda m: f"{m['clock']}から活動がありません（{m['hours']}時間）",
    ),
    (
        re.compile(
            rf"on (?P<days>weekdays|weekends) this home is usually active again within "
            rf"(?P<hours>{_NUMBER}) h of (?P<clock>{_CLOCK})"
        ),
        lambda m: (
            f"{_DAY_TYPE[m['days']]}、この世帯では通常{m['clock']}から{m['hours']}時間以内に"
            "活動が再開します"
        ),
    ),
    (
        re.compile(rf"no history yet for (?P<days>weekdays|weekends) around (?P<clock>{_CLOCK})"),
        lambda m: f"{_DAY_TYPE[m['days']]}の{m['clock']}ごろについては、まだ過去の記録がありません",
    ),
    (
        re.compile(
            rf"a flat load \(lamp, heater or TV\) has run unchanged for (?P<hours>{_NUMBER}) h"
        ),
        lambda m: (
            f"一定の電力（照明・暖房・テレビなど）が{m['hours']}時間、変化なく使われ続けています"
        ),
    ),
    (
        re.compile(r"activity in the last interval"),
        lambda m: "直近の計測で活動が確認されています",
    ),
    # detectors/outage.py DataOutage.explain_one
    (
        re.compile(rf"no meter data since (?P<clock>{_CLOCK}) \((?P<hours>{_NUMBER}) h\)"),
        lambda m: f"{m['clock']}からメーターのデータが届いていません（{m['hours']}時間）",
    ),
    (re.compile(r"meter data arriving"), lambda m: "メーターのデータは届いています"),
    # detectors/rules.py NoActivityRule.explain_one
    (
        re.compile(
            rf"no activity for (?P<hours>{_NUMBER}) h \(rule: alert after (?P<limit>{_NUMBER}) h\)"
        ),
        lambda m: f"{m['hours']}時間活動がありません（基準：{m['limit']}時間で警報）",
    ),
    # detectors/base.py Detector.explain_one (a detector without its own words)
    (re.compile(rf"score (?P<score>{_NUMBER})"), lambda m: f"スコア {m['score']}"),
    # watch/web/reports.py drift_reasons (the review list)
    (
        re.compile(
            rf"daily use (?P<change>{_NUMBER})% \((?P<recent>{_NUMBER}) vs "
            rf"(?P<before>{_NUMBER}) kWh/day\)"
        ),
        lambda m: (
            f"1日あたりの使用量が{_change(m['change'])}"
            f"（直近 {m['recent']} kWh/日、以前 {m['before']} kWh/日）"
        ),
    ),
    (
        re.compile(
            rf"first activity (?P<minutes>{_NUMBER}) min later "
            rf"\((?P<recent>{_CLOCK}) vs (?P<before>{_CLOCK})\)"
        ),
        lambda m: (
            f"1日の最初の活動が{m['minutes']}分遅くなっています"
            f"（直近 {m['recent']}、以前 {m['before']}）"
        ),
    ),
]

# watch/source_health.py: the whole reason, since a pull's error text may itself hold "; ".
_SOURCE_STALE = re.compile(
    r"no successful pull of source (?P<source>\S+) since (?P<since>\S+?)"
    r"(?:; last error: (?P<error>.*))?",
    re.DOTALL,
)


def _clause(text: str) -> str | None:
    for pattern, render in _CLAUSES:
        match = pattern.fullmatch(text)
        if match:
            return render(match)
    return None


def localise_reason(text: str, lang: str) -> str:
    """``text`` (a reason written by a detector) for a reader of ``lang``.

    English, and any text not recognised, comes back unchanged; a reason whose clauses are
    partly recognised has those clauses rendered and the others kept as written.

    >>> print(localise_reason("no activity since 07:30 (5.5 h); on weekdays this home is "
    ...                       "usually active again within 1.5 h of 07:30", "ja"))
    07:30から活動がありません（5.5時間）。平日、この世帯では通常07:30から1.5時間以内に活動が再開します
    >>> localise_reason("no meter data since 03:00 (7.0 h)", "en")
    'no meter data since 03:00 (7.0 h)'
    >>> localise_reason("in hospital until Friday", "ja")
    'in hospital until Friday'
    """
    if lang != "ja" or not isinstance(text, str) or not text.strip():
        return text
    stale = _SOURCE_STALE.fullmatch(text.strip())
    if stale:
        error = f"（最後のエラー：{stale['error']}）" if stale["error"] else ""
        return (
            f"データ元「{stale['source']}」から{stale['since']}以降、取得に成功していません{error}"
        )
    clauses = [part.strip() for part in text.split(";")]
    rendered = [_clause(part) for part in clauses]
    if not any(rendered):
        return text
    return JAPANESE_SEPARATOR.join(
        japanese if japanese is not None else original
        for japanese, original in zip(rendered, clauses, strict=True)
        if original
    )
