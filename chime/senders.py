"""Sending one alert to one channel: a signed webhook, a Slack-style incoming webhook, or an e-mail.

Each sender makes one attempt and returns an :class:`Outcome` (accepted or not, the HTTP status or SMTP
reply); it raises :class:`SendError` for a failure with no answer (refused by the egress rules, no
connection, a timeout, an SMTP error). The caller (chime.alerts) records the attempt and retries.

Every attempt runs under a :class:`Deadline`: a hard limit on the whole attempt (not per socket
operation), enforced by a timer that shuts the connection down, so a server that answers slowly or
trickles bytes cannot stretch an attempt past it (chime.alerts keeps it shorter than the attempt's lease).

HTTP and SMTP go through the egress rules of the http_request job (jobs.egress): the host is resolved
and every address vetted, and the connection is made to the vetted addresses only (a second DNS answer
cannot change the peer). Redirects are not followed: a 3xx is a failed attempt. An SMTP login over
`security: none` (the password in clear) is refused unless the server is on loopback or allowed by name
or network in CHIME_EGRESS_ALLOW.

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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any

from jobs import egress

USER_AGENT = "Chime-Alerts/1"
HTTP_TIMEOUT_SECONDS = 10
MAX_REPLY_CHARS = 500
MAX_ERROR_REPLY_CHARS = 200  # a server's reply quoted in a delivery's error, which viewers read
QUIT_TIMEOUT_SECONDS = 5  # the goodbye after an accepted e-mail: best effort
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


class Deadline:
    """The hard limit of one attempt: no socket operation waits past it (connect timeouts are cut to what
    is left) and, while :meth:`enforced`, a timer shuts the connection down when it passes, which ends
    any read or write in progress however the server paces its bytes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.ends - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.ends

    def timeout(self, per_operation: float) -> float:
        """A socket timeout: `per_operation`, cut to what is left (never 0, which would mean non-blocking)."""
        return max(0.001, min(per_operation, self.remaining()))

    def exceeded(self) -> SendError:
        return SendError(f"no complete answer within the attempt's deadline ({self.seconds:g} s); stopped")

    @contextmanager
    def enforced(self, current_socket: Callable[[], socket.socket | None]) -> Iterator[None]:
        """Shut `current_socket()` (read when the deadline passes) down if the block is still running then."""
        lock, done = threading.Lock(), [False]

        def abort() -> None:
            with lock:
                sock = None if done[0] else current_socket()
                if sock is not None:
                    try:  # the plain socket's shutdown (an SSLSocket's own would drop its TLS state under the reader)
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass

        timer = threading.Timer(self.remaining(), abort)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            with lock:  # after this, abort() touches nothing: the caller may close (and the OS reuse) the socket
                done[0] = True
            timer.cancel()


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


def post_json(url: str, body: bytes, headers: dict[str, str], deadline: Deadline,
              timeout_seconds: float = HTTP_TIMEOUT_SECONDS) -> Outcome:
    """POST `body` to `url` (vetted by the egress rules, at this moment) within `deadline`; a 2xx answer
    is accepted."""
    try:
        target = egress.vet(url, egress.allow_list_from_env())
    except (egress.EgressError, ValueError) as error:
        raise SendError(str(error)) from None
    except OSError as error:
        raise SendError(f"cannot connect: {error}") from None
    timeout = deadline.timeout(timeout_seconds)
    connection = _PinnedHTTPS(target, timeout) if target.scheme == "https" else _PinnedHTTP(target, timeout)
    try:
        with deadline.enforced(lambda: connection.sock):
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(64 * 1024)
    except (HTTPException, OSError, ValueError) as error:
        if deadline.expired():
            raise deadline.exceeded() from None
        if isinstance(error, TimeoutError):
            raise SendError(f"no answer within {timeout:g} seconds") from None
        raise SendError(f"the request failed: {error}") from None
    finally:
        connection.close()
    ok = 200 <= response.status < 300
    error = None if ok else f"HTTP {response.status} {response.reason}".strip()
    if 300 <= response.status < 400:
        error = f"HTTP {response.status}: redirects are not followed"
    return Outcome(ok, response.status, None, error)


def _connect(target: egress.Target, timeout_seconds: float) -> socket.socket:
    """A connection to one of the target's vetted addresses (never to a name resolved again)."""
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


def vet_host(host: str, port: int, allow: egress.AllowList) -> egress.Target:
    """Resolve an SMTP host and vet every address by the egress rules; SendError when one is refused."""
    try:
        addresses = egress.resolve(host, port)
    except OSError as error:
        raise SendError(f"cannot connect: {error}") from None
    for address in addresses:
        reason = egress.refusal(address, allow, host)
        if reason is not None:
            raise SendError(reason)
    return egress.Target("smtp", host, port, "", addresses)


def cleartext_login_allowed(host: str, addresses: tuple[egress.Address, ...], allow: egress.AllowList) -> bool:
    """Whether a password may cross the network in clear to `host`: only to loopback, or to a host or
    network the operator listed in CHIME_EGRESS_ALLOW."""
    if host.lower().rstrip(".") in allow.hosts:
        return True
    return bool(addresses) and all(address.is_loopback or any(
        address.version == net.version and address in net for net in allow.networks) for address in addresses)


CLEARTEXT_LOGIN = ("a login over security none would send the password in clear: use starttls or tls "
                   "(none with a login is for a relay on loopback or a host listed in CHIME_EGRESS_ALLOW)")


def send_email(config: dict[str, Any], password: str | None, message: EmailMessage, deadline: Deadline) -> Outcome:
    """Send over SMTP (STARTTLS, implicit TLS or none) within `deadline`, logging in when a username is
    configured. Accepted once the server answers the message's DATA with 2xx: what happens after (the
    QUIT) cannot make it a failure, which would send the e-mail again."""
    started = time.monotonic()
    host, port = str(config["host"]), int(config["port"])
    allow = _allow_list()
    target = vet_host(host, port, allow)
    if config.get("username") and config.get("security") == "none" and not cleartext_login_allowed(
            host, target.addresses, allow):
        raise SendError(f"refused: {CLEARTEXT_LOGIN}")
    session: list[_PinnedSMTP | _PinnedSMTPSSL] = []
    try:
        with deadline.enforced(lambda: session[0].sock if session else None):
            smtp = _smtp(config, target, deadline, session)
            if config.get("username"):
                smtp.login(config["username"], password or "")
            refused = smtp.send_message(message)
            code, reply = smtp.accepted
            _goodbye(smtp)
    except smtplib.SMTPRecipientsRefused as error:
        codes = ", ".join(f"{who}: {code}" for who, (code, _) in error.recipients.items())
        raise SendError(f"the SMTP server refused every recipient ({codes})") from None
    except smtplib.SMTPResponseException as error:
        if deadline.expired():
            raise deadline.exceeded() from None
        raise _answered(error.smtp_code, error.smtp_error, host, port) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as error:
        if deadline.expired():
            raise deadline.exceeded() from None
        raise SendError(f"SMTP {host}:{port} failed after {time.monotonic() - started:.1f} s: "
                        f"{_printable(str(error))[:MAX_ERROR_REPLY_CHARS]}") from None
    finally:
        for smtp in session:
            smtp.close()
    if refused:
        return Outcome(False, code, _reply_text(reply), f"refused recipients: {', '.join(sorted(refused))}")
    return Outcome(True, code, _reply_text(reply), None)


def _allow_list() -> egress.AllowList:
    try:
        return egress.allow_list_from_env()
    except ValueError as error:  # CHIME_EGRESS_ALLOW is malformed
        raise SendError(str(error)) from None


def _answered(code: int, raw: bytes | str, host: str, port: int) -> SendError:
    """The error of an SMTP reply that refused: its code and (bounded, printable) text; a server that does
    not speak SMTP (its greeting has no reply code: a web or SSH server) is not quoted."""
    if not 200 <= code <= 599:
        return SendError(f"{host}:{port} did not answer in SMTP (no reply code): is it an SMTP server?")
    text = _reply_text(raw)[:MAX_ERROR_REPLY_CHARS]
    return SendError(f"the SMTP server answered {code} {text}", code, text)


def _goodbye(smtp: smtplib.SMTP) -> None:
    """QUIT after the message was accepted; any trouble is ignored (the e-mail is on its way)."""
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(min(QUIT_TIMEOUT_SECONDS, smtp.sock.gettimeout() or QUIT_TIMEOUT_SECONDS))
        smtp.quit()
    except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError):
        pass


class _Accepting:
    """Keeps the server's answer to DATA (the message's acceptance) for the delivery's record."""

    accepted: tuple[int, bytes] = (250, b"")

    def data(self, msg: Any) -> tuple[int, bytes]:
        code, reply = super().data(msg)  # type: ignore[misc]
        self.accepted = (code, reply)
        return code, reply


class _PinnedSMTP(_Accepting, smtplib.SMTP):
    """SMTP to the vetted addresses only."""

    def __init__(self, target: egress.Target, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._host, self.target = target.host, target  # the name TLS checks the certificate against

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return _connect(self.target, timeout)


class _PinnedSMTPSSL(_Accepting, smtplib.SMTP_SSL):
    """SMTP over implicit TLS to the vetted addresses only."""

    def __init__(self, target: egress.Target, timeout: float) -> None:
        super().__init__(timeout=timeout, context=tls_context())
        self._host, self.target = target.host, target

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.context.wrap_socket(_connect(self.target, timeout), server_hostname=self._host)


def _smtp(config: dict[str, Any], target: egress.Target, deadline: Deadline,
          session: list[Any]) -> _PinnedSMTP | _PinnedSMTPSSL:
    """Connect (the greeting read under the deadline: `session` holds the connection from the start)."""
    timeout = deadline.timeout(float(config.get("timeout_seconds") or 30))
    smtp = _PinnedSMTPSSL(target, timeout) if config.get("security") == "tls" else _PinnedSMTP(target, timeout)
    session.append(smtp)
    code, reply = smtp.connect(target.host, target.port)
    if code != 220:
        raise smtplib.SMTPConnectError(code, reply)
    if config.get("security", "starttls") == "starttls":
        smtp.starttls(context=tls_context())
    return smtp


def _reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return _printable(text)[:MAX_REPLY_CHARS]


def _printable(text: str) -> str:
    """`text` on one line, without control or other unprintable characters."""
    return " ".join("".join(char if char.isprintable() else " " for char in text).split())
