"""`flask --app wsgi forum import-wxr | import-disqus | export | import-json`: moving a
forum in and out; `rebuild-counters`: recounting the queue's maintained counters."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from flask.cli import with_appcontext

from forum.extensions import db, take_write_lock_up_front
from forum.services import counters
from forum.tools import disqus, transfer, wxr

T = TypeVar("T")


@click.command("import-wxr")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="Check the file and count what it holds; write nothing."
)
@click.option(
    "--update",
    is_flag=True,
    help="Re-apply statuses and edits from a newer export of a blog imported before.",
)
def import_wxr(file: Path, dry_run: bool, update: bool) -> None:
    """Import a WordPress export (WXR): posts, tags, authors and every comment, in one go."""
    with open(file, "rb") as stream:
        try:
            summary = _with_progress(
                file, lambda progress: wxr.import_wxr(stream, progress, update=update)
            )
        except wxr.WXRError as error:
            db.session.rollback()
            raise click.ClickException(f"{file}: {error}. Nothing was imported.") from error
    _finish(summary, dry_run)


@click.command("import-disqus")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="Check the file and count what it holds; write nothing."
)
def import_disqus(file: Path, dry_run: bool) -> None:
    """Import a Disqus comments export (XML): threads matched to posts, every comment."""
    with open(file, "rb") as stream:
        try:
            summary = _with_progress(file, lambda progress: disqus.import_disqus(stream, progress))
        except disqus.DisqusError as error:
            db.session.rollback()
            raise click.ClickException(f"{file}: {error}. Nothing was imported.") from error
    _finish(summary, dry_run)


def _with_progress(file: Path, run: Callable[[Callable[[int], None] | None], T]) -> T:
    """Run an import, with a progress bar over the file's bytes on a terminal."""
    if not sys.stderr.isatty():
        return run(None)
    with click.progressbar(length=file.stat().st_size, label="Importing", file=sys.stderr) as bar:
        return run(bar.update)


def _finish(summary: wxr.ImportSummary | disqus.DisqusSummary, dry_run: bool) -> None:
    """Print the warnings, changes and summary; commit unless it is a dry run."""
    for line in summary.warnings:
        click.echo(f"Warning: {line}")
    for line in summary.changes:
        click.echo(f"Changed: {line}")
    if dry_run:
        db.session.rollback()
        click.echo(f"{summary}\nDry run: nothing was written.")
        return
    db.session.commit()
    click.echo(str(summary))


@click.command("export")
@with_appcontext
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
def export(fmt: str, file: Path) -> None:
    """Write every member, post, comment and moderation record to FILE (- for stdout)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # One snapshot for every section, so rows written meanwhile cannot dangle.
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    if str(file) == "-":
        counts = transfer.export_json(sys.stdout)
    else:
        # Written aside and renamed, so a failed export never leaves a half file behind.
        partial = file.with_name(file.name + ".partial")
        try:
            with open(partial, "w", encoding="utf-8") as out:
                counts = transfer.export_json(out)
            os.replace(partial, file)
        finally:
            partial.unlink(missing_ok=True)
    click.echo(transfer.describe(counts), err=str(file) == "-")


@click.command("import-json")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_json(file: Path) -> None:
    """Load a `forum export` file into an empty database."""
    with open(file, encoding="utf-8") as stream:
        try:
            counts = transfer.import_json(stream)
        except transfer.TransferError as error:
            db.session.rollback()
            raise click.ClickException(f"{file}: {error}. Nothing was imported.") from error
    db.session.commit()
    click.echo(transfer.describe(counts))


@click.command("rebuild-counters")
@with_appcontext
def rebuild_counters() -> None:
    """Recount the queue's maintained counters (tabs, badge, per post, each author's
    history) from the comments."""
    take_write_lock_up_front()
    counts = counters.rebuild()
    authors = len(counters.stored_authors())
    db.session.commit()
    totals = {name: n for (post_id, name), n in sorted(counts.items()) if post_id == counters.ALL}
    click.echo(
        "Counters rebuilt: "
        + (", ".join(f"{n} {k}" for k, n in totals.items()) or "empty")
        + f"; {authors} authors' histories"
    )


COMMANDS = (import_wxr, import_disqus, export, import_json, rebuild_counters)
