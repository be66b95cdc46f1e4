"""Email over SMTP, with the standard library's ``smtplib`` and ``email.message.EmailMessage``.

For email, ``Message.to`` is the contact's address (delivery picks ``Contact.email`` for this
channel). Bodies are the SMS texts, sent as UTF-8 with a per-purpose subject and a footer: the
texts ask for a reply of "1" or "2", and replies are only read by SMS.

Errors are sorted the way the engine needs them: a recipient refused with a 5xx code (550 no such
mailbox) is permanent for that address; everything else (4xx, a refused or timed-out connection,
the server hanging up, our own sender or login refused) is retryable, because it says nothing
about the recipient.
"""

from __future__ import annotations

import email.policy
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from notify.channels.base import ChannelError, Message, SendResult

logger = logging.getLogger(__name__)

# 7bit transfer encoding (quoted-printable or base64, whichever is shorter): Japanese bodies
# survive servers that do not speak 8BITMIME.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")

_SUBJECTS: dict[str, dict[str, str]] = {
    "ja": {
        "ask": "【みまもり】確認のお願い",
        "reminder": "【みまもり】再通知",
        "inform": "【みまもり】お知らせ",
        "alert": "【みまもり・運用】お知らせ",
    },
    "en": {
        "ask": "[Watch] Please check",
        "reminder": "[Watch] Reminder",
        "inform": "[Watch] Update",
        "alert": "[Watch ops] Notice",
    },
}
_FOOTERS: dict[str, str] = {
    "ja": "※このメールへの返信は届きません。返信はSMSでお願いします。",
    "en": "Replies to this email are not read: please reply by SMS.",
}


def mask_email(address: str) -> str:
    """An address safe for logs: first character of the mailbox and the domain.

    >>> mask_email("ichiro.yamada@example.jp")
    'i***@example.jp'
    """
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def subject_for(message: Message) -> str:
    """The subject line for a message's purpose, in its language (Japanese when unknown)."""
    subjects = _SUBJECTS.get(message.language, _SUBJECTS["ja"])
    return subjects.get(message.purpose, subjects["inform"])


def build_email(message: Message, sender: str) -> EmailMessage:
    """The ``EmailMessage`` for ``message``: UTF-8 subject and body, a fresh Message-ID."""
    mail = EmailMessage(policy=_POLICY)
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = subject_for(message)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    footer = _FOOTERS.get(message.language, _FOOTERS["ja"])
    mail.set_content(f"{message.body}\n\n{footer}\n", charset="utf-8")
    return mail


class EmailChannel:
    """Send each message as one email through an SMTP server.

    Parameters
    ----------
    host, port
        The SMTP server (a relay or submission port).
    sender
        The From address.
    username, password
        Credentials for SMTP AUTH, when the server needs them.
    starttls
        Upgrade the connection with STARTTLS before logging in and sending.
    timeout
        Seconds for connecting and for each reply before the send counts as a (retryable) failure.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout

    def send(self, message: Message) -> SendResult:
        mail = build_email(message, self.sender)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mail, from_addr=self.sender, to_addrs=[message.to])
        except smtplib.SMTPRecipientsRefused as error:
            raise self._refused(message, error) from error
        except smtplib.SMTPResponseException as error:
            # Sender, login or DATA refused: about us or the message, not the recipient.
            logger.warning(
                "smtp refused message %s to %s: %s",
                message.notification_id,
                mask_email(message.to),
                error.smtp_code,
            )
            raise ChannelError(
                f"smtp error {error.smtp_code}", permanent=False, code=error.smtp_code
            ) from error
        except TimeoutError as error:
            raise ChannelError("smtp timed out", permanent=False, code="timeout") from error
        except (smtplib.SMTPException, OSError) as error:
            # Refused connection, server hung up, STARTTLS not offered, TLS failure. smtplib
            # reports a reply that timed out as a disconnection, with the timeout as context.
            if isinstance(error.__context__, TimeoutError):
                raise ChannelError("smtp timed out", permanent=False, code="timeout") from error
            raise ChannelError("smtp unreachable", permanent=False, code="connection") from error
        return SendResult(provider_id=mail["Message-ID"].strip("<>")[:64])

    @staticmethod
    def _refused(message: Message, error: smtplib.SMTPRecipientsRefused) -> ChannelError:
        code, _text = next(iter(error.recipients.values()), (None, b""))
        permanent = isinstance(code, int) and 500 <= code < 600
        logger.warning(
            "smtp refused recipient %s of message %s: %s",
            mask_email(message.to),
            message.notification_id,
            code,
        )
        return ChannelError(f"smtp recipient refused ({code})", permanent=permanent, code=code)
