"""Routes for alert channels and their deliveries: reading for viewers, a test send for operators,
changes for admins. A channel's secrets are never sent back (only "set" / "not set")."""
from __future__ import annotations

from typing import Any

from flask import jsonify, url_for

from chime import channels
from chime.enums import Role
from chime.schemas.channel import ChannelRead, DeliveryRead
from chime.unit_of_work import unit_of_work
from chime.validation import MAX_ID
from webapp.api.blueprint import bp
from webapp.api.common import json_body, paginate, query_args
from webapp.auth import allow


def _read(channel: Any) -> dict[str, Any]:
    return ChannelRead.dump(channels.channel_view(channel))


@bp.get("/channels/")
@allow(Role.VIEWER)
def list_channels() -> Any:
    return jsonify(paginate(channels.channel_query(), _read))


@bp.post("/channels/")
@allow(Role.ADMIN)
def create_channel() -> Any:
    with unit_of_work():
        channel = channels.create_channel(json_body())
    response = jsonify(_read(channel))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_channel", channel_id=channel.id)
    return response


@bp.get("/channels/<int:channel_id>/")
@allow(Role.VIEWER)
def get_channel(channel_id: int) -> Any:
    return jsonify(_read(channels.get_channel(channel_id)))


@bp.patch("/channels/<int:channel_id>/")
@allow(Role.ADMIN)
def update_channel(channel_id: int) -> Any:
    with unit_of_work():
        channel = channels.update_channel(channels.get_channel(channel_id), json_body())
    return jsonify(_read(channel))


@bp.delete("/channels/<int:channel_id>/")
@allow(Role.ADMIN)
def delete_channel(channel_id: int) -> Any:
    with unit_of_work():
        channels.delete_channel(channels.get_channel(channel_id))
    return "", 204


@bp.post("/channels/<int:channel_id>/test/")
@allow(Role.OPERATOR)
def test_channel(channel_id: int) -> Any:
    with unit_of_work():
        delivery = channels.send_test(channels.get_channel(channel_id))
    response = jsonify({"delivery": DeliveryRead.dump(delivery)})
    response.status_code = 202
    return response


@bp.get("/channels/<int:channel_id>/deliveries/")
@allow(Role.VIEWER)
def list_channel_deliveries(channel_id: int) -> Any:
    channels.get_channel(channel_id)
    return jsonify(paginate(channels.delivery_query(channel_id=channel_id), DeliveryRead.dump))


@bp.get("/deliveries/")
@allow(Role.VIEWER)
def list_deliveries() -> Any:
    args = query_args()
    task_id = args.integer("task_id", None, 1, MAX_ID)
    channel_id = args.integer("channel_id", None, 1, MAX_ID)
    return jsonify(paginate(channels.delivery_query(channel_id=channel_id, task_id=task_id), DeliveryRead.dump))
