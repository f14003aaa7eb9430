"""Sending one alert to one channel: a signed webhook, a Slack-style incoming webhook, or an e-mail.

Each sender makes one attempt and returns an :class:`Outcome` (accepted or not, the HTTP status or SMTP
reply); it raises :class:`SendError` for a failure with no answer (refused by the egress rules, no
connection, a timeout, an SMTP error). The caller (chime.alerts) records the attempt and retries.

HTTP goes through the egress rules of the http_request job (jobs.egress): the URL's host is resolved
and every address vetted, and the connection is made to the vetted addresses only (a second DNS answer
cannot change the peer). Redirects are not followed: a 3xx is a failed attempt.

The webhook signature (README "Alerts: channels and delivery"):
``X-Chime-Signature: sha256=<hex HMAC-SHA256(secret, f"{X-Chime-Timestamp}.{body}")>``, where the
timestamp is whole Unix seconds and the body the exact bytes sent.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any

from jobs import egress

USER_AGENT = "Chime-Alerts/1"
HTTP_TIMEOUT_SECONDS = 10
MAX_REPLY_CHARS = 500
SLACK_TEXT_CHARS = 3000  # Slack's limit for one section block's text


class SendError(Exception):
    """An attempt that got no acceptable answer; `status` is the SMTP reply code when there was one."""

    def __init__(self, message: str, status: int | None = None, reply: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reply = reply


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None  # HTTP status or SMTP reply code
    reply: str | None = None  # SMTP reply text
    error: str | None = None


# --------------------------------------------------------------------------- webhook and slack


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Chime-Signature value: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def webhook_headers(event: str, delivery_id: str, secret: str, body: bytes, now_seconds: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Chime-Event": event,
        "X-Chime-Delivery": delivery_id,
        "X-Chime-Timestamp": str(now_seconds),
        "X-Chime-Signature": signature(secret, now_seconds, body),
    }


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    """The incoming-webhook body: a text (the notification's fallback) and blocks with the details."""
    title = str(payload.get("title") or payload.get("event") or "Chime alert")
    lines = [str(payload.get("message") or "")]
    if payload.get("link"):
        lines.append(f"<{payload['link']}|Open in Chime>")
    detail = "\n".join(line for line in lines if line)[:SLACK_TEXT_CHARS]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"[:SLACK_TEXT_CHARS]}}]
    if detail:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": detail}})
    context = f"event: {payload.get('event', '')} · delivery: {payload.get('delivery_id', '')}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"{title}: {lines[0]}".strip(": ")[:SLACK_TEXT_CHARS], "blocks": blocks}


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_seconds: float = HTTP_TIMEOUT_SECONDS) -> Outcome:
    """POST `body` to `url` (vetted by the egress rules, at this moment); a 2xx answer is accepted."""
    try:
        target = egress.vet(url, egress.allow_list_from_env())
    except (egress.EgressError, ValueError) as error:
        raise SendError(str(error)) from None
    except OSError as error:
        raise SendError(f"cannot connect: {error}") from None
    connection = _PinnedHTTPS(target, timeout_seconds) if target.scheme == "https" else _PinnedHTTP(target, timeout_seconds)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
    except TimeoutError:
        raise SendError(f"no answer within {timeout_seconds} seconds") from None
    except (HTTPException, OSError, ValueError) as error:
        raise SendError(f"the request failed: {error}") from None
    finally:
        connection.close()
    ok = 200 <= response.status < 300
    error = None if ok else f"HTTP {response.status} {response.reason}".strip()
    if 300 <= response.status < 400:
        error = f"HTTP {response.status}: redirects are not followed"
    return Outcome(ok, response.status, None, error)


def _connect(target: egress.Target, timeout_seconds: float) -> socket.socket:
    last: OSError | None = None
    for address in target.addresses:
        try:
            return socket.create_connection((str(address), target.port), timeout_seconds)
        except TimeoutError:
            raise
        except OSError as error:
            last = error
    raise last or OSError("no address to connect to")


class _PinnedHTTP(HTTPConnection):
    def __init__(self, target: egress.Target, timeout_seconds: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout_seconds)
        self.target = target

    def connect(self) -> None:
        self.sock = _connect(self.target, self.timeout)


class _PinnedHTTPS(HTTPSConnection):
    def __init__(self, target: egress.Target, timeout_seconds: float) -> None:
        self.tls = tls_context()
        super().__init__(target.host, target.port, timeout=timeout_seconds, context=self.tls)
        self.target = target

    def connect(self) -> None:
        self.sock = self.tls.wrap_socket(_connect(self.target, self.timeout), server_hostname=self.host)


# --------------------------------------------------------------------------- e-mail


def tls_context() -> ssl.SSLContext:
    """The TLS settings of every connection: the system's trusted certificates, host names checked."""
    return ssl.create_default_context()


def email_message(payload: dict[str, Any], sender: str, recipients: list[str]) -> EmailMessage:
    """The plain-text e-mail of one alert, with a link back to the run."""
    message = EmailMessage()
    title = str(payload.get("title") or payload.get("event") or "Chime alert")
    message["Subject"] = f"[Chime] {title}"[:250]
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["X-Chime-Event"] = str(payload.get("event", ""))
    message["X-Chime-Delivery"] = str(payload.get("delivery_id", ""))
    lines = [title, "", str(payload.get("message") or "")]
    task = payload.get("task") or {}
    if task:
        lines += ["", f"Task: {task.get('name')} (id {task.get('id')})"]
    if payload.get("occurred_at"):
        lines.append(f"When: {payload['occurred_at']}")
    if payload.get("link"):
        lines += ["", f"Open in Chime: {payload['link']}"]
    lines += ["", f"Event: {payload.get('event', '')} - delivery {payload.get('delivery_id', '')}"]
    message.set_content("\n".join(lines) + "\n")
    return message


def send_email(config: dict[str, Any], password: str | None, message: EmailMessage) -> Outcome:
    """Send over SMTP (STARTTLS, implicit TLS or none), logging in when a username is configured."""
    started = time.monotonic()
    try:
        with _smtp(config) as smtp:
            if config.get("username"):
                smtp.login(config["username"], password or "")
            refused = smtp.send_message(message)
            code, reply = smtp.noop()
    except smtplib.SMTPResponseException as error:
        text = _reply_text(error.smtp_error)
        raise SendError(f"the SMTP server answered {error.smtp_code} {text}", error.smtp_code, text) from None
    except smtplib.SMTPRecipientsRefused as error:
        codes = ", ".join(f"{who}: {code}" for who, (code, _) in error.recipients.items())
        raise SendError(f"the SMTP server refused every recipient ({codes})") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        raise SendError(f"SMTP {config.get('host')}:{config.get('port')} failed after "
                        f"{time.monotonic() - started:.1f} s: {error}") from None
    if refused:
        return Outcome(False, 250, None, f"refused recipients: {', '.join(sorted(refused))}")
    return Outcome(True, 250, _reply_text(reply) if code == 250 else None, None)


def _smtp(config: dict[str, Any]) -> smtplib.SMTP:
    host, port, timeout = config["host"], int(config["port"]), float(config.get("timeout_seconds") or 30)
    if config.get("security") == "tls":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context())
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    if config.get("security", "starttls") == "starttls":
        try:
            smtp.starttls(context=tls_context())
        except BaseException:
            smtp.close()
            raise
    return smtp


def _reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:MAX_REPLY_CHARS]
