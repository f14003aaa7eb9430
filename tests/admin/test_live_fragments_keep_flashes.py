"""A live refresh of a page's parts (app.js fetches the page again with X-Chime-Fragment) must not eat the
flash message that the next real page load shows: the admin pushes a change event as soon as a form's commit
lands, so an open page's refresh and the form's own redirect race for it."""
from __future__ import annotations

from typing import Any

from tests.admin.conftest import add_task


def test_a_live_refresh_leaves_the_flash_to_the_page_the_form_redirects_to(admin: Any) -> None:
    task = add_task("Sync")
    response = admin.post(f"/tasks/{task.id}/toggle")
    assert response.status_code in (302, 303)
    refresh = admin.client.get("/tasks", headers={"X-Chime-Fragment": "1"})
    assert refresh.status_code == 200 and 'class="flash' not in refresh.get_data(as_text=True)
    page = admin.client.get("/tasks").get_data(as_text=True)
    assert 'class="flash' in page and "disabled" in page
