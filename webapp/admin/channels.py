"""Admin pages for alert channels: list and delivery log (viewers), a task's deliveries (viewers), a test
send (operators), new / edit / delete (admins). Secret inputs (and a webhook's URL, write-only too) are always empty: a blank one keeps
the stored value. "Muted until" is a datetime-local input read as UTC."""
from __future__ import annotations

import re
from datetime import timezone
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from chime import channels, services
from chime.enums import ChannelKind, Role
from chime.errors import ChimeError
from chime.models import Channel
from chime.unit_of_work import unit_of_work
from webapp import queries
from webapp.admin.blueprint import bp
from webapp.admin.filters import page_arg
from webapp.auth import allow

KINDS = tuple(kind.value for kind in ChannelKind)
DELIVERY_PAGE_SIZE = 50
TASK_DELIVERY_PAGE_SIZE = 25  # deliveries per page of a task's alerts (each shows all its attempts)
TEXT_FIELDS = ("url", "host", "port", "security", "username", "from_address", "timeout_seconds")
SECRET_INPUTS = {"webhook": {"secret": "secret"}, "slack": {"slack_url": "url"}, "email": {"password": "password"}}
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what a datetime-local input shows and sends (seconds optional)
NAIVE_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")


@bp.get("/channels")
@allow(Role.VIEWER)
def channel_list() -> Any:
    return render_template("channels/list.html", channels=channels.list_channels())


@bp.get("/channels/new")
@allow(Role.ADMIN)
def channel_new() -> Any:
    kind = request.args.get("kind", "webhook")
    return render_form(None, {"kind": kind if kind in KINDS else "webhook", "enabled": True}, {})


@bp.post("/channels")
@allow(Role.ADMIN)
def channel_create() -> Any:
    payload = form_payload(request.form, request.form.get("kind", ""), creating=True)
    try:
        with unit_of_work():
            channel = channels.create_channel(payload)
    except ChimeError as error:
        return render_form(None, form_values(request.form), error.fields or {"body": error.message}), error.status
    flash(f"Channel “{channel.name}” created.", "success")
    return redirect(url_for("admin.channel_detail", channel_id=channel.id))


@bp.get("/channels/<int:channel_id>")
@allow(Role.VIEWER)
def channel_detail(channel_id: int) -> Any:
    channel = channels.get_channel(channel_id)
    page = queries.paginate(channels.delivery_query(channel_id=channel.id), offset=0, limit=DELIVERY_PAGE_SIZE)
    return render_template("channels/detail.html", channel=channel, config=channels.shown(channel),
                           secrets=channels.secrets_status(channel), deliveries=page.items, total=page.total)


@bp.get("/tasks/<int:task_id>/deliveries")
@allow(Role.VIEWER)
def task_deliveries(task_id: int) -> Any:
    """A task's alerts, newest first, one row per attempt (time, channel, event, outcome, answer, error)."""
    task = services.get_task(task_id)
    page = queries.numbered_page(channels.delivery_query(task_id=task.id), page_arg(request.args),
                                 TASK_DELIVERY_PAGE_SIZE)
    return render_template("tasks/deliveries.html", task=task, deliveries=page)


@bp.get("/channels/<int:channel_id>/edit")
@allow(Role.ADMIN)
def channel_edit(channel_id: int) -> Any:
    channel = channels.get_channel(channel_id)
    return render_form(channel, values_of(channel), {})


@bp.post("/channels/<int:channel_id>/edit")
@allow(Role.ADMIN)
def channel_update(channel_id: int) -> Any:
    channel = channels.get_channel(channel_id)
    payload = form_payload(request.form, channel.kind, creating=False)
    try:
        with unit_of_work():
            channels.update_channel(channel, payload)
    except ChimeError as error:
        if error.status == 404:
            raise
        values = {**form_values(request.form), "kind": channel.kind}
        return render_form(channels.get_channel(channel_id), values, error.fields or {"body": error.message}), error.status
    flash(f"Channel “{channel.name}” saved.", "success")
    return redirect(url_for("admin.channel_detail", channel_id=channel_id))


@bp.post("/channels/<int:channel_id>/test")
@allow(Role.OPERATOR)
def channel_test(channel_id: int) -> Any:
    with unit_of_work():
        delivery = channels.send_test(channels.get_channel(channel_id))
    flash(f"A test alert was queued (delivery {delivery.delivery_id}); its outcome shows below.", "success")
    return redirect(url_for("admin.channel_detail", channel_id=channel_id))


@bp.post("/channels/<int:channel_id>/delete")
@allow(Role.ADMIN)
def channel_delete(channel_id: int) -> Any:
    channel = channels.get_channel(channel_id)
    name = channel.name
    with unit_of_work():
        channels.delete_channel(channel)
    flash(f"Channel “{name}” deleted; its deliveries stay in the record.", "success")
    return redirect(url_for("admin.channel_list"))


# --------------------------------------------------------------------------- the form


def render_form(channel: Channel | None, values: dict[str, Any], errors: dict[str, str]) -> str:
    secrets = channels.secrets_status(channel) if channel is not None else {}
    config = channels.shown(channel) if channel is not None else {}
    return render_template("channels/form.html", channel=channel, values=values, errors=errors, kinds=KINDS,
                           secrets=secrets, config=config)


def values_of(channel: Channel) -> dict[str, Any]:
    config = dict(channel.config or {})
    muted = channel.muted_until.astimezone(timezone.utc).strftime(LOCAL_MINUTE) if channel.muted_until else ""
    return {**{k: ("" if v is None else v) for k, v in config.items() if k not in ("to", "url")},
            "name": channel.name, "kind": channel.kind, "enabled": channel.enabled,
            "to": "\n".join(config.get("to", [])), "muted_until": muted}


def form_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """What the user typed, to show again (never the secrets, nor a webhook's URL)."""
    values = {name: form.get(name, "") for name in ("name", "kind", "to", "muted_until", *TEXT_FIELDS) if name != "url"}
    return {**values, "enabled": form.get("enabled") == "on"}


def muted_until_utc(raw: str) -> str | None:
    """The form's "Muted until (UTC)": a datetime-local value (no offset) is UTC; one with an offset stands."""
    text = raw.strip()
    if not text:
        return None
    return f"{text}+00:00" if NAIVE_INSTANT.fullmatch(text) else text


def form_payload(form: MultiDict[str, str], kind: str, *, creating: bool) -> dict[str, Any]:
    """The form as the API's body: the kind's config, and the secrets typed in (a blank one: unchanged)."""
    config: dict[str, Any] = {}
    if kind == "webhook":  # write-only: blank keeps the stored URL when editing
        url = form.get("url", "").strip()
        config = {"url": url} if url or creating else {}
    elif kind == "email":
        config = {name: form.get(name, "").strip() for name in ("host", "security", "from_address")}
        config["username"] = form.get("username", "").strip() or None
        config["to"] = [a.strip() for a in form.get("to", "").replace(",", "\n").splitlines() if a.strip()]
        for name in ("port", "timeout_seconds"):
            raw = form.get(name, "").strip()
            config[name] = int(raw) if raw.isascii() and raw.isdigit() else (raw or None)
        config = {k: v for k, v in config.items() if v is not None or not creating}
    secrets = {key: form.get(field, "") for field, key in SECRET_INPUTS.get(kind, {}).items()}
    payload: dict[str, Any] = {"name": form.get("name", ""), "enabled": form.get("enabled") == "on",
                               "muted_until": muted_until_utc(form.get("muted_until", "")), "config": config}
    if creating:
        payload.update(kind=kind, secrets={k: v for k, v in secrets.items() if v})
    else:
        payload["secrets"] = secrets
    return payload
