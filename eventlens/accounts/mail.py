"""Mail for one-time links (invites, password resets) through an SMTP server, when configured.

Mail is optional: with `smtp_host` empty nothing is sent and the links are only printed (CLI)
or shown (dashboard), so a self-hosted install needs no mail server. The standard library's
smtplib does the protocol; STARTTLS verifies the server's certificate. A failure is an
`Unavailable` naming the server, never the password; the link it carried stays valid, so the
caller still hands it over by hand.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from eventlens.config import Settings
from eventlens.errors import InvalidInput, Unavailable


def mail_enabled(settings: Settings) -> bool:
    """True when an SMTP server is configured (`smtp_host` not empty)."""
    return bool(settings.smtp_host.strip())


def send_link(settings: Settings, to: str, subject: str, text: str) -> None:
    """Send one plain-text mail to `to` through the configured SMTP server.

    Raises `InvalidInput` for an address that cannot be a header (line breaks), `Unavailable`
    when the server cannot be reached, refuses the login, STARTTLS or the message, or times out
    (`smtp_timeout_seconds` per operation)."""
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    message = EmailMessage()
    try:
        message["From"] = settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
    except ValueError as exc:  # the email package refuses CR/LF in a header (injection)
        raise InvalidInput(f"cannot mail {to!r}: {exc}", field="email") from None
    message.set_content(text)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        # The server's words only: the reply never holds the password we sent.
        raise Unavailable(
            f"SMTP server {server} refused the login of {settings.smtp_username!r}: "
            f"{exc.smtp_code} {_text(exc.smtp_error)}"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise Unavailable(
            f"SMTP server {server} refused the mail to {to}: {exc.smtp_code} "
            f"{_text(exc.smtp_error)}"
        ) from None
    except smtplib.SMTPRecipientsRefused:
        raise Unavailable(f"SMTP server {server} refused the recipient {to}") from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, timeout, TLS
        reason = str(exc) or type(exc).__name__
        raise Unavailable(f"could not send mail through SMTP server {server}: {reason}") from None


def invite_mail(link: str, org_name: str, role: str) -> tuple[str, str]:
    """(subject, text) of an invite carrying `link`."""
    return (
        f"You are invited to {org_name} on EventLens",
        f"You have been invited to join {org_name} on EventLens as {role}.\n\n"
        f"Open this link to choose your password (it works once, for 7 days):\n\n{link}\n",
    )


def reset_mail(link: str) -> tuple[str, str]:
    """(subject, text) of a password reset carrying `link`."""
    return (
        "Reset your EventLens password",
        "Someone (hopefully you) asked to reset your EventLens password.\n\n"
        f"Open this link to choose a new one (it works once, for 1 hour):\n\n{link}\n\n"
        "If you did not ask for it, ignore this mail: your password stays as it is.\n",
    )


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
