"""Which role each route needs, written down from issue 15's definitions (not read from the code):
viewer reads everything; operator runs, retries, cancels, stops, pauses, enables and disables; admin edits
tasks, channels, rules, users and tokens. Managing one's own API tokens is open to every signed-in user."""
from __future__ import annotations

from typing import Any

import pytest

from chime.enums import Role
from webapp.auth import ROLE_ATTRIBUTE

VIEWER = {
    "admin.audit_list",
    "admin.channel_detail",
    "admin.channel_list",
    "admin.rule_list",
    "admin.dashboard",
    "admin.dependency_graph",
    "admin.engine_live",
    "admin.live_events",
    "admin.log_detail",
    "admin.log_export",
    "admin.log_list",
    "admin.notification_list",
    "admin.notification_read",
    "admin.notification_read_all",
    "admin.queue_list",
    "admin.task_deliveries",
    "admin.task_detail",
    "admin.task_list",
    "admin.task_live",
    "admin.task_preview",
    "admin.token_create",
    "admin.token_list",
    "admin.token_revoke",
    "admin.worker_list",
    "api.create_token",
    "api.cron_preview",
    "api.export_logs",
    "api.get_channel",
    "api.get_log",
    "api.get_maintenance",
    "api.get_reconcile",
    "api.get_rule",
    "api.get_task",
    "api.list_audit",
    "api.list_channel_deliveries",
    "api.list_channels",
    "api.list_deliveries",
    "api.list_jobs",
    "api.list_logs",
    "api.list_notifications",
    "api.list_queued_jobs",
    "api.list_queues",
    "api.list_rules",
    "api.list_tasks",
    "api.list_tokens",
    "api.list_workers",
    "api.openapi",
    "api.read_all_notifications",
    "api.read_notification",
    "api.revoke_token",
    "api.stats",
    "api.task_audit",
    "api.task_graph",
    "api.task_logs",
    "monitoring.metrics",
}
OPERATOR = {
    "admin.channel_test",
    "admin.log_retry",
    "admin.log_stop",
    "admin.queue_job_cancel",
    "admin.task_bulk",
    "admin.task_pause",
    "admin.task_resume",
    "admin.task_run",
    "admin.task_toggle",
    "api.bulk_tasks",
    "api.cancel_queued_job",
    "api.pause_task",
    "api.resume_task",
    "api.retry_log",
    "api.run_reconcile",
    "api.run_task",
    "api.stop_run",
    "api.test_channel",
    "api.toggle_task",
}
ADMIN = {
    "admin.channel_create",
    "admin.channel_delete",
    "admin.channel_edit",
    "admin.channel_new",
    "admin.channel_update",
    "admin.task_clone",
    "admin.task_delete",
    "admin.task_edit",
    "admin.task_new",
    "admin.user_create",
    "admin.user_delete",
    "admin.user_detail",
    "admin.user_list",
    "admin.user_set_active",
    "admin.user_set_password",
    "admin.user_set_role",
    "api.clone_task",
    "api.create_channel",
    "api.create_rule",
    "admin.maintenance_set",
    "admin.rule_create",
    "admin.rule_delete",
    "admin.task_alerts_mute",
    "api.create_task",
    "api.create_user",
    "api.delete_channel",
    "api.delete_rule",
    "api.delete_task",
    "api.delete_user",
    "api.get_user",
    "api.list_users",
    "api.mute_task_alerts",
    "api.patch_task",
    "api.replace_task",
    "api.set_maintenance",
    "api.update_channel",
    "api.update_rule",
    "api.update_user",
}
EXPECTED = {**dict.fromkeys(VIEWER, Role.VIEWER), **dict.fromkeys(OPERATOR, Role.OPERATOR),
            **dict.fromkeys(ADMIN, Role.ADMIN)}


def marked_roles(app: Any) -> dict[str, Role]:
    return {endpoint: getattr(view, ROLE_ATTRIBUTE) for endpoint, view in app.view_functions.items()
            if hasattr(view, ROLE_ATTRIBUTE)}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_marked_route_needs_the_role_the_issue_gives_it(app: Any) -> None:
    marked = marked_roles(app)

    assert {endpoint: role for endpoint, role in marked.items() if EXPECTED.get(endpoint) != role} == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_route_added_later_must_be_written_into_this_table(app: Any) -> None:
    assert sorted(set(marked_roles(app)) - set(EXPECTED)) == []
