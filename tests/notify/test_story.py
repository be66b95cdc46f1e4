"""The whole escalation, told once: nobody answers, a volunteer declines, another goes."""

from datetime import timedelta

from sqlmodel import Session, col, select

from data.tables import Incident, Notification
from data.tables.incidents import IncidentStatus
from notify.channels import TwilioSmsChannel
from notify.escalation import Outcome, resolve
from notify.replies import handle_inbound_sms
from notify.templates import format_since, label, render


def test_it_escalates_resident_family_volunteers_until_one_claims_then_tells_everyone(
    engine, clock, roster, sms, console, open_for, tick, timeline
):
    incident_id = open_for()

    tick()  # 09:00 Tokyo: the resident is asked first
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]

    tick(minutes=14)  # not yet: the resident has 15 minutes
    assert len(sms.sent) == 1
    tick(minutes=1)  # no answer after 15 minutes: family
    tick(minutes=29)
    assert len(sms.sent) == 2
    tick(minutes=1)  # no answer from family after 30: the first volunteer by priority
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family", "volunteer_a"]

    tick(minutes=5)
    reply_a = handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_a.phone, body="２", now=clock.now()
    )
    assert reply_a == "承知しました。ほかの方に連絡します。"
    tick()  # a "no" asks the next volunteer at once, without waiting out the 30 minutes
    assert roster.by_phone(sms.sent[-1].to) == "volunteer_b"

    reply_b = handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_b.phone, body="行きます", now=clock.now()
    )
    assert reply_b == "ありがとうございます。訪問をお願いします。"
    claimed_at = clock.now()
    tick(minutes=1)  # delivers the "B is going" informs
    tick(minutes=45)  # claimed: the chain has stopped, nothing more is sent (before a reminder)
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert incident.status == IncidentStatus.claimed
        assert incident.claimed_by_contact_id == roster.volunteer_b.id
        # Due again only for the claim reminder, an hour after the claim.
        assert incident.next_step_at == claimed_at + timedelta(minutes=60)

    assert resolve(engine=engine, incident_id=incident_id, outcome=Outcome.fine, now=clock.now())
    tick()

    assert [(roster.by_phone(m.to), m.purpose) for m in sms.sent] == [
        ("resident", "ask"),
        ("family", "ask"),
        ("volunteer_a", "ask"),
        ("volunteer_b", "ask"),
        ("family", "inform"),  # claimed
        ("volunteer_a", "inform"),
        ("family", "inform"),  # resolved
        ("volunteer_a", "inform"),
        ("volunteer_b", "inform"),
    ]
    assert console.sent == []
    assert timeline(incident_id) == [
        ("opened", "-"),
        ("step", "-"),
        ("message", "resident"),
        ("sent", "resident"),
        ("step", "-"),
        ("message", "family"),
        ("sent", "family"),
        ("step", "-"),
        ("message", "volunteer_a"),
        ("sent", "volunteer_a"),
        ("reply", "volunteer_a"),
        ("declined", "volunteer_a"),
        ("hurried", "-"),
        ("message", "volunteer_b"),
        ("sent", "volunteer_b"),
        ("reply", "volunteer_b"),
        ("claimed", "volunteer_b"),
        ("message", "family"),
        ("message", "volunteer_a"),
        ("sent", "family"),
        ("sent", "volunteer_a"),
        ("resolved", "-"),
        ("message", "family"),
        ("message", "volunteer_a"),
        ("message", "volunteer_b"),
        ("sent", "family"),
        ("sent", "volunteer_a"),
        ("sent", "volunteer_b"),
    ]
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert (incident.status, incident.outcome) == (IncidentStatus.resolved, "fine")
        topics = session.exec(select(Notification.topic).order_by(col(Notification.id))).all()
    assert topics == [
        "notify_resident",
        "notify_family",
        "notify_volunteers",
        "notify_volunteers",
        "claimed",
        "claimed",
        "resolved",
        "resolved",
        "resolved",
    ]


def test_no_message_carries_the_residents_address(engine, clock, roster, sms, open_for, tick):
    open_for()
    for minutes in (0, 15, 30, 30, 30, 30):
        tick(minutes=minutes)
    assert len(sms.sent) >= 5
    for message in sms.sent:
        assert "桜台3-14-15" not in message.body
        assert "練馬区" not in message.body


def test_the_whole_story_over_twilio_sends_exactly_these_texts(
    engine, clock, roster, console, open_for, tick, fake_twilio
):
    twilio = TwilioSmsChannel(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        from_number="+815012345678",
        base_url=fake_twilio.base_url,
    )
    channels = {"sms": twilio, "console": console}
    opened = clock.now()
    incident_id = open_for()

    def step(minutes: float = 0) -> None:
        tick(minutes=minutes, with_channels=channels)

    def reply(contact, body: str) -> str:  # noqa: ANN001
        return handle_inbound_sms(
            engine=engine, from_phone=contact.phone, body=body, now=clock.now()
        )

    step()  # the resident is asked; no answer in 15 minutes
    step(minutes=15)  # family; no answer in 30 minutes
    step(minutes=30)  # volunteer A
    step(minutes=5)
    assert reply(roster.volunteer_a, "2") == render("reply_decline", "ja")
    step()  # volunteer B at once
    assert reply(roster.volunteer_b, "1") == render("reply_claim", "ja")
    step(minutes=1)  # "B is going" to those already asked
    step(minutes=45)  # claimed: nothing more (the claim reminder comes at 60)
    assert resolve(engine=engine, incident_id=incident_id, outcome=Outcome.fine, now=clock.now())
    step()

    fills = {"name": "山田 花子", "area": "桜台三丁目", "incident_id": incident_id}
    since = format_since(opened, "Asia/Tokyo", "ja")  # as the engine fills {since}
    assert since == "1/6 9:00"  # opened at 2025-01-06T00:00Z, 09:00 in Tokyo
    ask = {
        kind: render(kind, "ja", since=since, **fills)
        for kind in ("notify_resident", "notify_family", "notify_volunteers")
    }
    claimed = render("claimed", "ja", name="山田 花子", who=label("volunteer", "ja"))
    resolved = render("resolved", "ja", name="山田 花子", outcome=label("fine", "ja"))
    assert [(m.to, m.body) for m in fake_twilio.messages] == [
        (roster.resident.phone, ask["notify_resident"]),
        (roster.family.phone, ask["notify_family"]),
        (roster.volunteer_a.phone, ask["notify_volunteers"]),
        (roster.volunteer_b.phone, ask["notify_volunteers"]),
        (roster.family.phone, claimed),
        (roster.volunteer_a.phone, claimed),
        (roster.family.phone, resolved),
        (roster.volunteer_a.phone, resolved),
        (roster.volunteer_b.phone, resolved),
    ]
    # The same texts, spelt out once, so a template change cannot pass unnoticed.
    assert claimed == (
        "【みまもり】山田 花子さんの件はボランティアの方が対応します。"
        "ご協力ありがとうございました。"
    )
    assert resolved == (
        "【みまもり】山田 花子さんの件は終了しました（お元気でした）。"
        "ご協力ありがとうございました。"
    )
    assert ask["notify_volunteers"] == (
        "【みまもり】桜台三丁目の山田 花子さんの様子が1/6 9:00から確認できません。"
        "訪問できる場合は「1」、難しい場合は「2」と返信してください。"
    )
    assert {m.from_ for m in fake_twilio.messages} == {"+815012345678"}
    assert console.sent == []
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert (incident.status, incident.outcome) == (IncidentStatus.resolved, "fine")
        provider_ids = session.exec(
            select(Notification.provider_id).order_by(col(Notification.id))
        ).all()
    assert provider_ids == [m.sid for m in fake_twilio.messages]
