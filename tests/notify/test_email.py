"""The email channel, ``smtplib`` pointed at a local fake SMTP server; email in a policy step."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from data.tables import Contact, Notification
from data.tables.incidents import NotificationStatus
from notify.channels import ChannelError, Message
from notify.channels.email import EmailChannel, mask_email
from notify.policy import Policy, Step, StepKind, policy_from_dict

_FAKE_PATH = Path(__file__).resolve().parents[1] / "fakes" / "fake_smtp.py"
SENDER = "mimamori@areawatch.example"
BODY = "【みまもり】桜台三丁目の山田 花子さんの様子が1/6 9:00から確認できません。"


def _load_fake_smtp():  # noqa: ANN202
    if "fake_smtp" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fake_smtp", _FAKE_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules["fake_smtp"] = module
        spec.loader.exec_module(module)
    return sys.modules["fake_smtp"]


@pytest.fixture
def fake_smtp() -> Iterator[object]:
    with _load_fake_smtp().FakeSmtp() as fake:
        yield fake


def _channel(fake, **kwargs) -> EmailChannel:  # noqa: ANN001
    return EmailChannel(host=fake.host, port=fake.port, sender=SENDER, **kwargs)


def _message(to="ichiro@example.jp", body=BODY, **kwargs) -> Message:  # noqa: ANN001
    return Message(notification_id=7, to=to, body=body, **kwargs)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_it_sends_a_utf8_email_with_a_japanese_subject_and_body(fake_smtp):
    result = _channel(fake_smtp).send(_message())

    [mail] = fake_smtp.mails
    assert (mail.mail_from, mail.rcpt_to) == (SENDER, ("ichiro@example.jp",))
    assert (mail.to, str(mail.message["From"]), mail.subject) == (
        "ichiro@example.jp",
        SENDER,
        "【みまもり】確認のお願い",
    )
    assert mail.body.startswith(BODY + "\n")
    assert "返信はSMSで" in mail.body
    assert mail.raw.isascii()  # 7bit on the wire: no server needs 8BITMIME
    assert result.provider_id == str(mail.message["Message-ID"]).strip("<>")


def test_an_english_contact_gets_an_english_subject_and_footer(fake_smtp):
    _channel(fake_smtp).send(
        _message(body="[Watch] The alert for Hanako is closed.", purpose="inform", language="en")
    )
    [mail] = fake_smtp.mails
    assert mail.subject == "[Watch] Update"
    assert mail.body.startswith("[Watch] The alert for Hanako is closed.\n")
    assert "please reply by SMS" in mail.body


def test_it_logs_in_when_given_credentials(fake_smtp):
    _channel(fake_smtp, username="relay-user", password="s3cret").send(_message())
    assert fake_smtp.logins == [("relay-user", "s3cret")]
    assert len(fake_smtp.mails) == 1


def test_a_refused_recipient_is_a_permanent_error(fake_smtp):
    fake_smtp.answer_rcpt("nobody@example.jp", 550, "no such mailbox")
    with pytest.raises(ChannelError) as caught:
        _channel(fake_smtp).send(_message(to="nobody@example.jp"))
    assert (caught.value.permanent, caught.value.code) == (True, 550)
    assert "nobody" not in str(caught.value)
    assert fake_smtp.mails == []


def test_a_deferred_recipient_is_worth_retrying(fake_smtp):
    fake_smtp.answer_rcpt("ichiro@example.jp", 451, "greylisted")
    channel = _channel(fake_smtp)
    with pytest.raises(ChannelError) as caught:
        channel.send(_message())
    assert (caught.value.permanent, caught.value.code) == (False, 451)

    fake_smtp.answer_rcpt("ichiro@example.jp", 250, "ok")
    channel.send(_message())
    assert len(fake_smtp.mails) == 1


def test_a_server_that_is_down_is_worth_retrying():
    channel = EmailChannel(host="127.0.0.1", port=_closed_port(), sender=SENDER, timeout=2)
    with pytest.raises(ChannelError) as caught:
        channel.send(_message())
    assert (caught.value.permanent, caught.value.code) == (False, "connection")


def test_a_hung_server_times_out_and_is_worth_retrying(fake_smtp):
    fake_smtp.hang = True
    with pytest.raises(ChannelError) as caught:
        _channel(fake_smtp, timeout=0.2).send(_message())
    assert (caught.value.permanent, caught.value.code) == (False, "timeout")


def test_starttls_refused_by_the_server_is_worth_retrying(fake_smtp):
    with pytest.raises(ChannelError) as caught:
        _channel(fake_smtp, starttls=True).send(_message())
    assert caught.value.permanent is False
    assert fake_smtp.mails == []


def test_addresses_are_masked_for_logs():
    assert mask_email("ichiro.yamada@example.jp") == "i***@example.jp"
    assert mask_email("not-an-address") == "***"


def test_email_is_a_known_policy_channel():
    policy = policy_from_dict(
        {
            "name": "p",
            "steps": [{"kind": "notify_family", "wait": 30, "channels": ["sms", "email"]}],
        }
    )
    assert policy.steps[0].channels == ("sms", "email")


# --- email inside an escalation step (SQLite and PostgreSQL) ----------------------------------

SMS_AND_EMAIL = Policy(
    name="sms-and-email",
    steps=(Step(StepKind.notify_volunteers, wait=30, channels=("sms", "email")),),
)
EMAIL_ONLY = Policy(
    name="email-only",
    steps=(
        Step(StepKind.notify_volunteers, wait=30, channels=("email",)),
        Step(StepKind.notify_staff, wait=30),
    ),
)


def _set_email(engine, contact: Contact, email: str | None) -> None:  # noqa: ANN001
    with Session(engine) as session:
        stored = session.get(Contact, contact.id)
        stored.email = email
        session.add(stored)
        session.commit()


@pytest.fixture
def mail_channels(fake_smtp, sms, console) -> dict[str, object]:  # noqa: ANN001
    return {"sms": sms, "console": console, "email": _channel(fake_smtp)}


def test_a_step_on_sms_and_email_sends_both_to_a_contact_with_an_email_and_sms_to_one_without(
    engine, roster, sms, fake_smtp, mail_channels, open_for, tick, timeline
):
    _set_email(engine, roster.volunteer_a, "sato@example.jp")
    incident_id = open_for(policy=SMS_AND_EMAIL)

    tick(with_channels=mail_channels)

    assert sorted(roster.by_phone(m.to) for m in sms.sent) == ["volunteer_a", "volunteer_b"]
    [mail] = fake_smtp.mails
    assert mail.rcpt_to == ("sato@example.jp",)
    with Session(engine) as session:
        rows = session.exec(
            select(Notification.contact_id, Notification.channel, Notification.status).order_by(
                col(Notification.id)
            )
        ).all()
    assert [(roster.who(c), ch, st) for c, ch, st in rows] == [
        ("volunteer_a", "sms", NotificationStatus.sent),
        ("volunteer_a", "email", NotificationStatus.sent),
        ("volunteer_b", "sms", NotificationStatus.sent),
    ]
    assert ("no_address", "volunteer_b") in timeline(incident_id)


def test_a_refused_email_address_does_not_stop_the_contacts_sms(
    engine, roster, sms, fake_smtp, mail_channels, open_for, tick, timeline
):
    _set_email(engine, roster.volunteer_a, "gone@example.jp")
    fake_smtp.answer_rcpt("gone@example.jp", 550, "no such mailbox")
    incident_id = open_for(policy=SMS_AND_EMAIL)

    tick(with_channels=mail_channels)

    with Session(engine) as session:
        assert session.get(Contact, roster.volunteer_a.id).disabled_at is None
        email_status = session.exec(
            select(Notification.status).where(Notification.channel == "email")
        ).one()
    assert email_status == NotificationStatus.failed
    assert "volunteer_a" in [roster.by_phone(m.to) for m in sms.sent]
    assert ("send_failed", "volunteer_a") in timeline(incident_id)
    assert ("contact_disabled", "volunteer_a") not in timeline(incident_id)


def test_an_email_only_step_skips_contacts_without_email_and_moves_on(
    engine, roster, sms, fake_smtp, mail_channels, open_for, tick, timeline
):
    incident_id = open_for(policy=EMAIL_ONLY)

    tick(with_channels=mail_channels)

    # No volunteer has an email: nobody is asked by email and staff get the SMS at once.
    assert fake_smtp.mails == []
    assert [roster.by_phone(m.to) for m in sms.sent] == ["staff"]
    events = timeline(incident_id)
    assert ("skipped", "volunteer_a") in events and ("skipped", "volunteer_b") in events
    assert ("unreachable", "-") in events


def test_an_email_removed_after_planning_fails_that_message_only(
    engine, roster, sms, fake_smtp, mail_channels, open_for, tick
):
    _set_email(engine, roster.volunteer_a, "sato@example.jp")
    open_for(policy=SMS_AND_EMAIL)
    tick(with_channels={"sms": sms})  # planned and SMS sent; email not configured here...
    with Session(engine) as session:
        # ...so reset the email row to pending to model a later sweep, after the roster changed.
        row = session.exec(select(Notification).where(Notification.channel == "email")).one()
        row.status, row.error = NotificationStatus.pending, None
        session.add(row)
        session.commit()
    _set_email(engine, roster.volunteer_a, None)

    tick(with_channels=mail_channels)

    assert fake_smtp.mails == []
    with Session(engine) as session:
        row = session.exec(select(Notification).where(Notification.channel == "email")).one()
    assert (row.status, row.error) == (NotificationStatus.failed, "no address for email")
