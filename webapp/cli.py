"""Command-line tools: `flask --app wsgi <command>`."""
from __future__ import annotations

import secrets

import click
from flask import Flask, current_app
from sqlalchemy import select

from webapp.auth import create_token, create_user, ensure_first_admin
from webapp.extensions import db
from webapp.models import User


def register_commands(app: Flask) -> None:
    """Attach every command to the app's CLI."""
    app.cli.add_command(create_admin_command)
    app.cli.add_command(create_token_command)
    app.cli.add_command(ensure_admin_command)
    app.cli.add_command(reconcile_command)


@click.command("create-admin")
@click.option("--username", default=None, help="User name (default: ADMIN_USERNAME or 'admin').")
@click.option("--password", default=None, help="Password (default: ADMIN_PASSWORD, else prompt).")
def create_admin_command(username: str | None, password: str | None) -> None:
    """Create an admin user with a hashed password."""
    username = username or current_app.config["ADMIN_USERNAME"]
    password = password or current_app.config["ADMIN_PASSWORD"] or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise click.ClickException(f"A user named {username!r} already exists")
    create_user(username, password)
    click.echo(f"Created admin user {username!r}")


@click.command("create-token")
@click.option("--name", default="cli", help="A label for the token.")
def create_token_command(name: str) -> None:
    """Create an API token; it is printed once and stored hashed."""
    click.echo(create_token(name))


@click.command("ensure-admin")
def ensure_admin_command() -> None:
    """Create the first admin if no user exists (generating a password when ADMIN_PASSWORD is unset)."""
    username = current_app.config["ADMIN_USERNAME"]
    given = current_app.config["ADMIN_PASSWORD"]
    created = ensure_first_admin(username, given or secrets.token_urlsafe(12))
    if created is None:
        click.echo("An admin user already exists")
    elif given:
        click.echo(f"Created admin user {username!r} with the password from ADMIN_PASSWORD")
    else:
        click.echo(f"Created admin user {username!r} with password {created[1]!r} (shown once)")


@click.command("reconcile")
def reconcile_command() -> None:
    """Run one reconcile pass now and print its report as JSON."""
    import json

    from scheduler.reconcile import reconcile
    from webapp.extensions import get_redis

    click.echo(json.dumps(reconcile(get_redis()), indent=2))
