"""What the audit trail keeps of a change: secrets masked at any depth, only the fields that changed."""
from __future__ import annotations

from chime.audit import MASK, changed_fields, masked


def test_a_secret_header_of_an_http_request_is_masked_however_deep() -> None:
    args = {"url": "https://example.com/hook", "headers": {"Authorization": "Bearer x", "Accept": "text/plain"}}

    shown = masked({"args": args})

    assert shown == {"args": {"url": "https://example.com/hook",
                              "headers": {"Authorization": MASK, "Accept": "text/plain"}}}
    assert "Bearer x" not in repr(shown)


def test_fields_whose_names_look_secret_are_masked_in_any_case() -> None:
    values = {"password": "p", "DB_PASSWORD": "p", "api_key": "k", "X-Api-Key": "k", "client_secret": "s",
              "refresh_token": "t", "Cookie": "c", "credentials": {"user": "u"}, "message": "hello"}

    shown = masked(values)

    assert {key for key, value in shown.items() if value == MASK} == set(values) - {"message"}
    assert shown["message"] == "hello"


def test_secrets_inside_lists_and_an_empty_secret_stay_recognisable() -> None:
    shown = masked({"env": [{"token": "abc"}, {"name": "x"}], "password": ""})

    assert shown == {"env": [{"token": MASK}, {"name": "x"}], "password": ""}


def test_the_password_of_a_url_is_masked_but_the_rest_of_the_url_is_kept() -> None:
    shown = masked({"url": "https://deploy:hunter2@example.com/hook?x=1", "dsn": "postgres://app:pw@db/prod"})

    assert shown == {"url": f"https://deploy:{MASK}@example.com/hook?x=1", "dsn": f"postgres://app:{MASK}@db/prod"}


def test_nothing_to_mask_is_none() -> None:
    assert masked(None) is None


def test_changed_fields_keeps_only_what_differs_on_both_sides() -> None:
    before = {"name": "ping", "interval_seconds": 60, "args": {"message": "hi"}, "enabled": True}
    after = {"name": "ping", "interval_seconds": 90, "args": {"message": "hello"}, "enabled": True}

    assert changed_fields(before, after) == ({"interval_seconds": 60, "args": {"message": "hi"}},
                                             {"interval_seconds": 90, "args": {"message": "hello"}})


def test_a_secret_looking_query_parameter_of_a_url_is_masked_and_the_others_kept() -> None:
    from chime.audit import masked

    shown = masked({"url": "https://hooks.example/x?token=abc123&page=2&API_KEY=zz9#frag"})

    assert shown == {"url": "https://hooks.example/x?token=********&page=2&API_KEY=********#frag"}
