"""`flask --app wsgi forum ...` commands."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from forum import spam_cli
from forum.extensions import db
from forum.models import Post, Role
from forum.services import accounts
from forum.tools import cli as tools_cli

forum_cli = AppGroup("forum", help="Forum administration.")


def init_app(app: Flask) -> None:
    for command in (*tools_cli.COMMANDS, *spam_cli.COMMANDS):
        forum_cli.add_command(command)
    app.cli.add_command(forum_cli)


@forum_cli.command("create-user")
@click.argument("username")
@click.option("--email", required=True)
@click.option(
    "--password",
    help="The password; prompted for when omitted, or read from stdin with --password -.",
)
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.MEMBER.value,
    show_default=True,
)
def create_user(username: str, email: str, password: str | None, role: str) -> None:
    """Create an account."""
    if password == "-":  # noqa: S105 - "-" means: read it from standard input
        password = sys.stdin.readline().rstrip("\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problems = accounts.password_problems(password) + accounts.username_problems(username)
    if problems:
        raise click.ClickException("; ".join(problems))
    try:
        user = accounts.create_user(username, email, password, Role(role))
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"Created {user.role.value} {user.username} (id {user.id}).")


@forum_cli.command("demo")
def demo() -> None:
    """Load demo posts, members and threaded discussions (only into an empty forum)."""
    from forum.tools import demo as demo_data

    if db.session.scalar(select(func.count(Post.id))):
        click.echo("The forum already has posts; demo data not loaded.")
        return
    summary = demo_data.load()
    db.session.commit()
    click.echo(summary)


@forum_cli.command("demo-queue")
@click.option("--count", default=1000, show_default=True, type=click.IntRange(1, 100_000))
def demo_queue(count: int) -> None:
    """Add COUNT mixed comments through the moderation rules (after `forum demo`)."""
    from forum.tools import demo as demo_data

    summary = demo_data.load_queue(count)
    db.session.commit()
    click.echo(summary)


@forum_cli.command("send-mail")
@click.option("--limit", default=100, show_default=True, help="Most mails to send per round.")
@click.option(
    "--watch",
    type=int,
    default=0,
    metavar="SECONDS",
    help="Keep running, sending every SECONDS (0: send once and exit).",
)
def send_mail(limit: int, watch: int) -> None:
    """Send queued mail (digests for moderators, decisions, replies) and retry failures."""
    import time

    from forum.extensions import take_write_lock_up_front
    from forum.services import mailer

    take_write_lock_up_front()  # workers write while this runs (a cron job)
    while True:
        report = mailer.send_due(limit=limit)
        click.echo(f"sent {report.sent}, failed {report.failed}, dropped {report.dropped}")
        if not watch:
            return
        db.session.remove()
        time.sleep(watch)
