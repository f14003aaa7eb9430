"""The core Flask app: settings, database, Redis and logging, without a single web route.

Every process builds one: the web app (`webapp.create_app`) adds its blueprints on top, while the
worker, the scheduler and the reconciler use this one as it is (`create_app`).
Either way `configure` runs, so every process registers the same jobs: the built-ins and your own
(CHIME_JOB_MODULES and the `chime.jobs` entry points, chime.job_modules).
"""
from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from chime.config import check_production_settings, instance_path_from_env, settings_from_env


def new_flask_app(import_name: str) -> Flask:
    """A Flask app whose instance folder comes from the environment (CHIME_INSTANCE_PATH or ./instance)."""
    return Flask(import_name, instance_relative_config=True, instance_path=instance_path_from_env(os.environ))


def configure(app: Flask, test_config: Mapping[str, Any] | None = None) -> Flask:
    """Settings from the environment (then `test_config`), checked; the job modules (CHIME_JOB_MODULES and
    the `chime.jobs` entry points, chime.job_modules); the database, Redis and logging."""
    from chime.database import init_db
    from chime.extensions import init_redis
    from chime.job_modules import load_job_modules
    from chime.live import install as publish_live_changes
    from chime.logs import configure_logging

    app.config.from_mapping(settings_from_env(os.environ, app.instance_path))
    if test_config:
        app.config.update(test_config)
    check_production_settings(app.config)
    load_job_modules(app.config["JOB_MODULES"])
    os.makedirs(app.instance_path, exist_ok=True)
    init_db(app)
    init_redis(app)
    publish_live_changes()
    configure_logging(app.config.get("LOG_LEVEL", "INFO"))
    return app


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The app of an engine process (worker, scheduler): the core, no routes."""
    return configure(new_flask_app("chime"), test_config)


_start_up_frozen = False


def freeze_start_up_objects() -> None:
    """Move what start-up loaded (modules, the app, its mappers) into the collector's permanent generation.

    A long-running engine process keeps these objects for its whole life; left in the collected
    generations, every full collection walks them again (about 150,000 of them), which slows
    object-heavy work such as a reconcile pass loading every task by ~10 % (BENCHMARKS.md §5).
    `gc.freeze()` is the standard library's way to say so. Once per process: what is frozen is never
    collected, so only what start-up loaded belongs there (a test process builds many workers).
    """
    global _start_up_frozen
    if _start_up_frozen:
        return
    gc.collect()
    gc.freeze()
    _start_up_frozen = True
