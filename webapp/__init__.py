"""Chime's Flask application factory."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from chime.app import configure, new_flask_app
from webapp.arguments import IdConverter


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config -> extensions -> blueprints -> error handlers -> CLI."""
    app = configure(new_flask_app(__name__), test_config)
    app.url_map.strict_slashes = False
    app.url_map.converters["int"] = IdConverter  # every <int:...> in a URL is a row id: 1..MAX_ID or 404
    register_extensions(app)
    register_blueprints(app)
    register_web_boundary(app)
    register_error_handlers(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    from webapp.csrf import csrf

    csrf.init_app(app)


def register_blueprints(app: Flask) -> None:
    from webapp.admin import bp as admin_bp
    from webapp.api import bp as api_bp
    from webapp.csrf import csrf

    csrf.exempt(api_bp)  # the API authenticates with bearer tokens, not cookies
    from webapp.monitoring import bp as monitoring_bp

    csrf.exempt(monitoring_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(monitoring_bp)


def register_web_boundary(app: Flask) -> None:
    """Trust CHIME_PROXY_FIX_X_FOR proxies, check every session's user, throttle sign-ins."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from webapp.admin import throttle
    from webapp.auth import end_request_actor, load_session_user

    if app.config.get("PROXY_FIX_X_FOR"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"], x_proto=0, x_host=0)  # type: ignore[method-assign]
    app.before_request(load_session_user)
    app.teardown_request(end_request_actor)
    throttle.init_app(app)


def register_error_handlers(app: Flask) -> None:
    from webapp.errors import register_error_handlers as register

    register(app)


def register_cli(app: Flask) -> None:
    from webapp.cli import register_commands

    register_commands(app)
