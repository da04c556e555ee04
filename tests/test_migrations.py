"""The Alembic migrations build the same schema as the models, and go back down."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from forum import create_app
from forum.extensions import db
from tests.helpers import postgres_database


@pytest.fixture
def empty_database_url(request, tmp_path):
    """A database without tables, for the migrations to build."""
    if request.config.getoption("--db") == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    with postgres_database("mig", schema=False) as url:
        yield url


# SQLite's reflection does not read an index on an expression (the queue's score order);
# PostgreSQL's does, and compares it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_upgrade_matches_models_and_downgrade_to_base(empty_database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "x"})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, db.metadata)
        assert diff == [], diff
        downgrade(revision="base")
        tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        db.engine.dispose()
