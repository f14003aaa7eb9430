"""The task form's fields come from the task schema: a field the template does not lay out still gets an input."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from chime.schemas.task import TaskInput
from tests.admin.conftest import AdminClient
from webapp.admin import forms

TEMPLATE = Path(forms.__file__).resolve().parents[1] / "templates" / "tasks" / "form.html"


def test_the_template_lays_out_exactly_the_fields_the_form_says_it_does() -> None:
    source = TEMPLATE.read_text()
    named = set(re.findall(r'(?:text_field|select_field)\("([a-z_]+)"|name="([a-z_]+)"', source))
    laid_out = {first or second for first, second in named} | {"args"}  # args: one input per job parameter
    assert laid_out == forms.LAID_OUT_FIELDS


def test_every_task_field_has_an_input_kind_and_a_label() -> None:
    kinds = {*forms.TEXT_FIELDS, *forms.INT_FIELDS, *forms.DATETIME_FIELDS, *forms.FLAG_FIELDS,
             "depends_on", "args"}
    assert kinds == set(TaskInput.model_fields)
    assert forms.FIELD_LABELS["misfire_grace_seconds"] == "Misfire grace"


def test_no_field_needs_a_generic_input_today() -> None:
    assert forms.generic_inputs() == []


def test_a_field_the_template_does_not_lay_out_gets_an_input_of_its_kind_labelled_by_its_title(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forms, "LAID_OUT_FIELDS", forms.LAID_OUT_FIELDS - {"overlap", "timeout_seconds", "enabled",
                                                                           "start_at", "cron"})
    inputs = {field.name: field for field in forms.generic_inputs()}
    assert {name: inputs[name].widget for name in inputs} == {
        "overlap": "select", "timeout_seconds": "number", "enabled": "checkbox", "start_at": "datetime-local",
        "cron": "text"}
    assert inputs["overlap"].options == (("SKIP", "SKIP"), ("ALLOW", "ALLOW"))
    assert inputs["timeout_seconds"].label == "Timeout"
    assert inputs["cron"].hint == TaskInput.model_fields["cron"].description


def test_a_new_task_form_shows_the_defaults_of_the_schema() -> None:
    values = forms.blank_values()
    assert (values["max_retries"], values["timezone"], values["overlap"], values["enabled"]) == ("3", "UTC", "SKIP",
                                                                                                 True)


def test_the_form_page_renders_the_generic_inputs(admin: AdminClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Here beside the template's own inputs for the same fields, which it still lays out."""
    monkeypatch.setattr(forms, "LAID_OUT_FIELDS", forms.LAID_OUT_FIELDS - {"enabled", "timeout_seconds", "notify"})
    html = admin.html("/tasks/new")
    assert html.count('id="f-timeout_seconds"') == html.count('id="f-notify"') == html.count('id="f-enabled"') == 2
    assert '<option value="ALWAYS" selected>ALWAYS</option>' in html
