"""Replies by SMS: what they mean, and who may act on which incident."""

import pytest
from sqlmodel import Session, col, select

from data.tables import Incident, IncidentEvent
from data.tables.incidents import IncidentStatus
from notify.replies import ReplyIntent, handle_inbound_sms, parse_reply


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("1", ReplyIntent.yes),
        ("１", ReplyIntent.yes),
        (" 1\n", ReplyIntent.yes),
        ("OK", ReplyIntent.yes),
        ("ｏｋ", ReplyIntent.yes),
        ("Yes!", ReplyIntent.yes),
        ("はい", ReplyIntent.yes),
        ("はい。", ReplyIntent.yes),
        ("大丈夫", ReplyIntent.yes),
        ("大丈夫です", ReplyIntent.yes),
        ("行きます", ReplyIntent.yes),
        ("1 今から行きます", ReplyIntent.yes),
        ("2", ReplyIntent.no),
        ("２", ReplyIntent.no),
        ("no", ReplyIntent.no),
        ("NO.", ReplyIntent.no),
        ("いいえ", ReplyIntent.no),
        ("行けません", ReplyIntent.no),
        ("無理", ReplyIntent.no),
        ("無理です", ReplyIntent.no),
        ("", ReplyIntent.unknown),
        ("3", ReplyIntent.unknown),
        ("12", ReplyIntent.unknown),
        ("hello", ReplyIntent.unknown),
        ("病院にいます", ReplyIntent.unknown),
    ],
)
def test_it_reads_replies_in_japanese_and_english(text, intent):
    assert parse_reply(text) is intent


def _status(engine, incident_id):
    with Session(engine) as session:
        return session.get(Incident, incident_id).status


def test_the_resident_replying_1_closes_the_incident_as_fine(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    tick()
    reply = handle_inbound_sms(
        engine=engine, from_phone=roster.resident.phone, body="１", now=clock.now()
    )
    assert reply == "ありがとうございます。お元気で安心しました。"
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert (incident.status, incident.outcome) == (IncidentStatus.resolved, "fine")
    tick(minutes=120)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]  # nobody else bothered


def test_family_replying_1_acknowledges_and_stops_the_chain(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    tick()
    tick(minutes=15)
    handle_inbound_sms(engine=engine, from_phone=roster.family.phone, body="はい", now=clock.now())
    assert _status(engine, incident_id) == IncidentStatus.acknowledged
    tick(minutes=120)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family"]


def test_a_volunteer_cannot_claim_after_another_has(engine, clock, roster, sms, open_for, tick):
    incident_id = open_for()
    for minutes in (0, 15, 30, 30):
        tick(minutes=minutes)
    assert [roster.by_phone(m.to) for m in sms.sent][-2:] == ["volunteer_a", "volunteer_b"]
    handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_b.phone, body="1", now=clock.now()
    )
    late = handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_a.phone, body="1", now=clock.now()
    )
    assert late == "この件はすでに対応済みです。ありがとうございました。"
    with Session(engine) as session:
        assert session.get(Incident, incident_id).claimed_by_contact_id == roster.volunteer_b.id


def test_an_unknown_number_gets_no_answer_and_changes_nothing(
    engine, clock, roster, open_for, tick
):
    incident_id = open_for()
    tick()
    assert (
        handle_inbound_sms(engine=engine, from_phone="+819099999999", body="1", now=clock.now())
        == ""
    )
    assert _status(engine, incident_id) == IncidentStatus.open


def test_a_contact_can_only_answer_incidents_it_was_asked_about(
    engine, clock, roster, make_household, make_contact, open_for, tick
):
    make_household("h2", name="田中 次郎")
    other = make_contact("h2", "volunteer", "+819022220003")
    incident_id = open_for()
    tick()
    # A volunteer of another household, and one of this household not yet asked.
    for phone in (other.phone, roster.volunteer_a.phone):
        reply = handle_inbound_sms(engine=engine, from_phone=phone, body="1", now=clock.now())
        assert reply == "現在、確認中の案件はありません。"
    assert _status(engine, incident_id) == IncidentStatus.open


def test_an_unclear_reply_gets_help_and_is_recorded(engine, clock, roster, open_for, tick):
    incident_id = open_for()
    tick()
    reply = handle_inbound_sms(
        engine=engine, from_phone=roster.resident.phone, body="病院にいます", now=clock.now()
    )
    assert reply == "「1」（大丈夫・行けます）または「2」（行けません）で返信してください。"
    with Session(engine) as session:
        event = session.exec(
            select(IncidentEvent)
            .where(IncidentEvent.kind == "reply")
            .order_by(col(IncidentEvent.id).desc())
        ).first()
    assert (event.detail["intent"], event.detail["text"]) == ("unknown", "病院にいます")
    assert _status(engine, incident_id) == IncidentStatus.open


def test_the_resident_replying_2_brings_the_family_in_at_once(
    engine, clock, roster, sms, open_for, tick
):
    open_for()
    tick()
    reply = handle_inbound_sms(
        engine=engine, from_phone=roster.resident.phone, body="2", now=clock.now()
    )
    assert reply == "すぐに連絡します。緊急の場合は119番に電話してください。"
    tick(minutes=1)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family"]


def test_an_english_speaking_contact_is_answered_in_english(
    engine, clock, make_household, make_contact, sms, open_for, tick
):
    make_household("h1")
    resident = make_contact("h1", "resident", "+447700900123", language="en")
    open_for()
    tick()
    assert sms.sent[0].body == "[Watch] Are you all right? Please reply 1 if you are fine."
    reply = handle_inbound_sms(engine=engine, from_phone=resident.phone, body="OK", now=clock.now())
    assert reply == "Thank you, glad you are well."
