"""forum: a Flask discussion forum built around its moderation queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from forum.config import DEFAULTS, finish_config
from forum.ids import IdConverter


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: defaults, instance/config.py, FORUM_* env, then `config`."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    # Every <int:...> in a URL is range-checked before a view or a query sees it.
    app.url_map.converters["int"] = IdConverter
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("FORUM")
    app.config.update(config or {})
    finish_config(app)

    from forum import cli, errors, pagecache, security, web
    from forum.extensions import init_extensions
    from forum.services import counters, versions

    init_extensions(app)
    counters.install()
    versions.init_app(app)
    pagecache.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    web.init_app(app)
    register_blueprints(app)
    cli.init_app(app)
    return app


def register_blueprints(app: Flask) -> None:
    from forum.auth.views import bp as auth_bp
    from forum.comments.views import bp as comments_bp
    from forum.feeds.views import bp as feeds_bp
    from forum.legacy.views import bp as legacy_bp
    from forum.moderation.views import bp as moderation_bp
    from forum.posts.views import bp as posts_bp

    for bp in (posts_bp, comments_bp, auth_bp, moderation_bp, feeds_bp, legacy_bp):
        app.register_blueprint(bp)
