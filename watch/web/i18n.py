"""The dashboard's words in Japanese (the default) and English.

The language is ``?lang=`` when given (and then remembered in a cookie), else the cookie, else
Japanese. A missing translation shows the key, which a test catches.
"""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("ja", "en")
LANG_COOKIE = "lang"

WORDS: dict[str, tuple[str, str]] = {
    # key: (ja, en)
    "app": ("エリア見守り", "AreaWatch"),
    "login": ("ログイン", "Log in"),
    "logout": ("ログアウト", "Log out"),
    "username": ("ユーザー名", "Username"),
    "password": ("パスワード", "Password"),
    "login_failed": ("ユーザー名またはパスワードが違います。", "Wrong username or password."),
    "too_many": (
        "失敗が多すぎます。しばらくしてからもう一度お試しください。",
        "Too many failed attempts. Try again later.",
    ),
    "area_view": ("地域の一覧", "Area view"),
    "area": ("地域", "Area"),
    "all": ("すべて", "All"),
    "filter": ("絞り込む", "Filter"),
    "household": ("世帯", "Household"),
    "status": ("状態", "Status"),
    "since": ("開始", "Since"),
    "reason": ("理由", "Reason"),
    "no_households": ("該当する世帯はありません。", "No households match."),
    "status_normal": ("通常", "Normal"),
    "status_watch": ("注意", "Watch"),
    "status_alert": ("警報", "Alert"),
    "status_outage": ("データ途絶", "Data outage"),
    "status_silenced": ("一時停止中", "Silenced"),
    "usage_chart": ("電気の使用量（14日間）", "Electricity use (14 days)"),
    "usage_desc": (
        "30分ごとの使用量（線）と、いつもの範囲（帯、過去28日の10〜90パーセンタイル）。赤い線は通報の開始。",
        "Use per 30 minutes (line) against the usual band (shaded: 10th–90th percentile of "
        "the previous 28 days). Red lines mark incidents.",
    ),
    "why_flagged": ("検知の理由", "Why it is flagged"),
    "nothing_flagged": ("現在、検知はありません。", "Nothing is flagged now."),
    "incidents": ("通報", "Incidents"),
    "incident": ("通報", "Incident"),
    "opened": ("発生", "Opened"),
    "kind": ("種類", "Kind"),
    "outcome": ("結果", "Outcome"),
    "contacts": ("連絡先", "Contacts"),
    "name": ("氏名", "Name"),
    "role": ("役割", "Role"),
    "phone": ("電話", "Phone"),
    "disabled": ("無効", "disabled"),
    "silences": ("一時停止", "Silences"),
    "no_silences": ("一時停止はありません。", "No silences."),
    "add_silence": ("一時停止を追加", "Add a silence"),
    "end_silence": ("今すぐ終了する", "End it now"),
    "previous_page": ("前へ", "Previous"),
    "next_page": ("次へ", "Next"),
    "ended_early": ("早期終了", "ended early"),
    "map": ("地図", "Map"),
    "map_label": ("世帯の地図（状態で色分け）", "Map of the households, coloured by status"),
    "map_unplaced": ("位置情報のない世帯", "Households without a location"),
    "map_no_points": ("地図に表示できる世帯はありません。", "No household to show on the map."),
    "until": ("終了日時", "Until"),
    "save": ("保存", "Save"),
    "timeline": ("経過", "Timeline"),
    "time": ("時刻", "Time"),
    "event": ("出来事", "Event"),
    "who": ("誰が", "Who"),
    "detail": ("詳細", "Detail"),
    "actions": ("対応", "Actions"),
    "acknowledge": ("確認した（連絡を止める）", "Acknowledge (stop the chain)"),
    "claim": ("訪問する", "Claim (someone is going)"),
    "claim_contact": ("訪問する人", "Who is going"),
    "default_staff": ("この世帯の職員連絡先", "the household's staff contact"),
    "resolve": ("解決する", "Resolve"),
    "note": ("メモ", "Note"),
    "add_note": ("メモを追加", "Add note"),
    "viewer_cannot_act": ("閲覧のみの権限です。", "You can view only."),
    "tv_events": ("テレビの操作（最新）", "TV events (latest)"),
    "back": ("一覧へ戻る", "Back to the list"),
    "outcome_fine": ("問題なし", "Fine"),
    "outcome_away": ("外出・不在", "Away"),
    "outcome_needed_help": ("支援が必要だった", "Needed help"),
    "outcome_false_alarm": ("誤報", "False alarm"),
    "outcome_other": ("その他", "Other"),
    "incident_open": ("対応待ち", "Open"),
    "incident_acknowledged": ("確認済み", "Acknowledged"),
    "incident_claimed": ("訪問中", "Claimed"),
    "incident_resolved": ("解決", "Resolved"),
    "state_active": ("有効", "active"),
    "state_pending": ("予定", "pending"),
    "state_expired": ("終了", "expired"),
    "outcome_open": ("未解決", "Still open"),
    "nav_reports": ("月次報告", "Reports"),
    "nav_review": ("要確認", "Review"),
    "monthly_report": ("月次報告", "Monthly report"),
    "download_csv": ("CSVをダウンロード", "Download CSV"),
    "summary": ("概要", "Summary"),
    "sms_segments": ("送信したSMS（セグメント数）", "SMS segments sent"),
    "minutes_from_opening": ("発生からの時間（分）", "Minutes from opening"),
    "median": ("中央値", "Median"),
    "to_ack": ("確認まで", "To acknowledgement"),
    "to_claim": ("訪問決定まで", "To claim"),
    "to_resolve": ("解決まで", "To resolution"),
    "no_incidents": ("この月の通報はありません。", "No incidents this month."),
    "review_list": ("要確認の世帯", "Households to review"),
    "review_help": (
        "見直しの検知と、過去28日の傾向の変化（直近7日の1日あたり使用量がその前の21日と30%以上違う、"
        "または最初の活動時刻が1時間以上遅くなった）。",
        "Review findings, and drifts over the last 28 days (daily use of the last 7 days more "
        "than 30% off the 21 before, or the first activity of the day more than an hour later).",
    ),
    "source": ("根拠", "Source"),
    "source_finding": ("検知", "Finding"),
    "source_drift": ("傾向の変化", "Drift"),
    "trend": ("傾向（直近7日 / その前21日）", "Trend (last 7 days / 21 before)"),
    "kwh_per_day": ("1日あたりkWh", "kWh per day"),
    "first_activity": ("最初の活動", "First activity"),
    "nothing_to_review": ("要確認の世帯はありません。", "Nothing to review."),
    "done": ("完了しました。", "Done."),
    "stale_sources": ("データ取得が止まっています", "Data sources not pulling"),
    "stale_source_line": (
        "データ元「{source}」：{since}以降、取得に成功していません（{hours}時間）",
        "Source {source}: no successful pull since {since} ({hours} h)",
    ),
    "stale_sources_help": (
        "このデータ元の世帯は、データが届かないため活動がないように見えることがあります。"
        "運用担当者に連絡してください。",
        "Households fed by it may look silent. Tell whoever runs the data feeds.",
    ),
    "language": ("English", "日本語"),
}


def language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(LANG_COOKIE)
    return remembered if remembered in LANGUAGES else "ja"


def translate(key: str, lang: str) -> str:
    """The word for ``key`` in ``lang``.

    >>> translate("status_alert", "ja"), translate("status_alert", "en")
    ('警報', 'Alert')
    """
    pair = WORDS.get(key)
    if pair is None:
        return key
    return pair[LANGUAGES.index(lang)]
