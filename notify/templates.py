"""Short SMS texts per purpose, Japanese (default) and English, and SMS segment counting.

Japanese SMS are sent as UCS-2: 70 characters fit one segment, 67 per segment once split, and each
segment is billed. Every template stays within two segments with realistic fills (a test holds
this). Bodies never carry the resident's address: an SMS can be read by whoever holds the phone.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

DEFAULT_LANGUAGE = "ja"

_TEMPLATES: dict[str, dict[str, str]] = {
    "ja": {
        "notify_resident": (
            "【みまもり】お変わりありませんか。大丈夫でしたら「1」と返信してください。"
        ),
        "notify_family": (
            "【みまもり】{name}さんの電気の使用が{since}から見られません。"
            "様子を確認できる場合は「1」、できない場合は「2」と返信してください。"
        ),
        "notify_volunteers": (
            "【みまもり】{area}の{name}さんの様子が{since}から確認できません。"
            "訪問できる場合は「1」、難しい場合は「2」と返信してください。"
        ),
        "notify_staff": (
            "【みまもり・職員】{area}の{name}さん：{since}から反応がなく、"
            "家族・ボランティアも未対応です。事案{incident_id}。確認後「1」と返信を。"
        ),
        "repeat_staff": (
            "【みまもり・再通知】{area}の{name}さん（事案{incident_id}）が未対応のままです。"
            "確認後「1」と返信してください。"
        ),
        "claimed": "【みまもり】{name}さんの件は{who}が対応します。ご協力ありがとうございました。",
        "claim_reminder": (
            "【みまもり】{name}さん（事案{incident_id}）の様子はいかがでしたか。"
            "無事なら「1」、支援が必要なら「2」と返信するか職員に連絡してください。"
        ),
        "resolved": (
            "【みまもり】{name}さんの件は終了しました（{outcome}）。ご協力ありがとうございました。"
        ),
        "outage": (
            "【みまもり・運用】世帯{household_id}のデータが{since}から届いていません。"
            "停電か機器の不具合の可能性があります。"
        ),
        "contact_disabled": (
            "【みまもり・運用】世帯{household_id}の{who}の電話番号が無効と判明したため、"
            "使用を停止しました。名簿を確認してください。"
        ),
        "sms_budget_exhausted": (
            "【みまもり・運用】今月のSMS予算を使い切りました。本人・家族・ボランティアへの"
            "SMSを止めています。職員への連絡は続けます。"
        ),
        "reply_fine": "ありがとうございます。お元気で安心しました。",
        "reply_not_fine": "すぐに連絡します。緊急の場合は119番に電話してください。",
        "reply_ack": "ありがとうございます。確認をお願いします。",
        "reply_claim": "ありがとうございます。訪問をお願いします。",
        "reply_decline": "承知しました。ほかの方に連絡します。",
        "reply_help": "「1」（大丈夫・行けます）または「2」（行けません）で返信してください。",
        "reply_no_incident": "現在、確認中の案件はありません。",
        "reply_closed": "この件はすでに対応済みです。ありがとうございました。",
    },
    "en": {
        "notify_resident": "[Watch] Are you all right? Please reply 1 if you are fine.",
        "notify_family": (
            "[Watch] No electricity use from {name} since {since}. "
            "Reply 1 if you can check on them, 2 if you cannot."
        ),
        "notify_volunteers": (
            "[Watch] {name} ({area}) has not been seen since {since}. "
            "Reply 1 if you can visit, 2 if you cannot."
        ),
        "notify_staff": (
            "[Watch staff] {name} ({area}): silent since {since}; no family or volunteer "
            "took it. Incident {incident_id}. Reply 1 when checked."
        ),
        "repeat_staff": (
            "[Watch reminder] {name} ({area}), incident {incident_id}, is still unhandled. "
            "Reply 1 when checked."
        ),
        "claimed": "[Watch] {who} is taking care of {name}. Thank you.",
        "claim_reminder": (
            "[Watch] How is {name} (incident {incident_id})? Reply 1 if all is well, "
            "2 if help is needed, or call the staff."
        ),
        "resolved": "[Watch] The alert for {name} is closed ({outcome}). Thank you.",
        "outage": "[Watch ops] No data from household {household_id} since {since}: "
        "a power cut or a device fault.",
        "contact_disabled": "[Watch ops] Household {household_id}: the number of {who} proved "
        "invalid and is no longer used. Please check the roster.",
        "sms_budget_exhausted": "[Watch ops] This month's SMS budget is used up: no more SMS to "
        "residents, family or volunteers. Staff are still alerted.",
        "reply_fine": "Thank you, glad you are well.",
        "reply_not_fine": "We will contact you now. In an emergency call 119.",
        "reply_ack": "Thank you for checking.",
        "reply_claim": "Thank you for visiting.",
        "reply_decline": "Understood, we will ask someone else.",
        "reply_help": "Please reply 1 (fine / I can go) or 2 (I cannot).",
        "reply_no_incident": "There is nothing to answer right now.",
        "reply_closed": "This has already been taken care of. Thank you.",
    },
}

_LABELS: dict[str, dict[str, str]] = {
    "ja": {
        "resident": "ご本人",
        "family": "ご家族",
        "volunteer": "ボランティアの方",
        "staff": "職員",
        "fine": "お元気でした",
        "away": "外出中でした",
        "needed_help": "支援が必要でした",
        "false_alarm": "誤報でした",
        "other": "その他",
    },
    "en": {
        "resident": "The resident",
        "family": "Family",
        "volunteer": "A volunteer",
        "staff": "Staff",
        "fine": "all well",
        "away": "away from home",
        "needed_help": "needed help",
        "false_alarm": "false alarm",
        "other": "other",
    },
}


def _language(language: str | None) -> str:
    return language if language in _TEMPLATES else DEFAULT_LANGUAGE


def render(key: str, language: str | None = None, **fills: object) -> str:
    """The text for ``key`` in ``language`` (Japanese when unknown).

    >>> render("reply_help", "en")
    'Please reply 1 (fine / I can go) or 2 (I cannot).'
    """
    return _TEMPLATES[_language(language)][key].format(**fills)


def label(word: str, language: str | None = None) -> str:
    """A role or outcome in words (``"volunteer"`` -> ``"ボランティアの方"``)."""
    return _LABELS[_language(language)].get(word, word)


def format_since(when: datetime | None, timezone: str, language: str | None = None) -> str:
    """A short local time for a message body: ``1/6 9:00`` (ja) or ``6 Jan 09:00`` (en)."""
    if when is None:
        return "?"
    local = when.astimezone(ZoneInfo(timezone))
    if _language(language) == "en":
        return local.strftime("%d %b %H:%M").lstrip("0")
    return f"{local.month}/{local.day} {local.hour}:{local.minute:02d}"


def template_keys(language: str = DEFAULT_LANGUAGE) -> list[str]:
    return list(_TEMPLATES[_language(language)])


# The GSM 03.38 default alphabet; the extension characters cost two septets each.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def sms_segments(body: str) -> int:
    """How many SMS segments ``body`` is billed as.

    GSM-7 text: 160 septets in one segment, 153 per segment when split. Anything else is UCS-2:
    70 UTF-16 code units in one, 67 per segment when split.

    >>> sms_segments("Reply 1"), sms_segments("あ" * 70), sms_segments("あ" * 71)
    (1, 1, 2)
    """
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in body):
        units = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)
