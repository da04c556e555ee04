"""Helpers shared by test modules: walking the URL map with public Werkzeug API only.

A walk discovers the app's rules itself, so a route added next year is covered the day
it is added. Rule arguments are read from the rule's own text (`<int:comment_id>`,
`<any(a, b):action>`), the documented rule syntax, and URLs are built with `Rule.build`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from flask import Flask
from werkzeug.routing import Rule

from forum.extensions import db
from forum.models import Ban, BanKind, Role, Status, Tag
from tests.factories import make_comment, make_post, make_user

_ARGUMENT = re.compile(
    r"<(?:(?P<converter>[A-Za-z_]\w*)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[A-Za-z_]\w*)>"
)
# Ids at and past 32 and 64 bits, negatives, zero and another script's digits.
HOSTILE_IDS = (
    "0", "-1", str(2**31 - 1), str(2**31), str(2**63 - 1), str(2**63), str(10**20), "9" * 400,
    "\u0661",
)  # fmt: skip


@dataclass(frozen=True)
class RuleArgument:
    name: str
    converter: str  # "default", "int", "any", ...
    choices: tuple[str, ...] = ()


def rule_arguments(rule: Rule) -> list[RuleArgument]:
    """The rule's parameters in order, with their converter's name (and `any` choices)."""
    found = []
    for match in _ARGUMENT.finditer(rule.rule):
        converter = match["converter"] or "default"
        choices = ()
        if converter == "any" and match["args"]:
            choices = tuple(c.strip().strip("'\"") for c in match["args"].split(","))
        found.append(RuleArgument(match["name"], converter, choices))
    return found


def walked_rules(app: Flask) -> list[Rule]:
    """Every rule but static files, in a stable order."""
    return sorted(
        (r for r in app.url_map.iter_rules() if r.endpoint != "static"),
        key=lambda r: (r.endpoint, r.rule),
    )


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def sample_values(
    rule: Rule, given: Mapping[str, object] | None = None, integer: int = 1, text: str = "x"
) -> dict[str, object]:
    """A value for every parameter: `given` first, then an `any` choice, an int or text."""
    given = given or {}
    values: dict[str, object] = {}
    for arg in rule_arguments(rule):
        if arg.name in given:
            values[arg.name] = given[arg.name]
        elif arg.choices:
            values[arg.name] = arg.choices[0]
        elif arg.converter == "int":
            values[arg.name] = integer
        else:
            values[arg.name] = text
    return values


def build_path(rule: Rule, values: Mapping[str, object]) -> str:
    built = rule.build(dict(values))
    assert built is not None, (rule.rule, values)
    return built[1]


def int_arguments(rule: Rule) -> list[str]:
    return [arg.name for arg in rule_arguments(rule) if arg.converter == "int"]


def hostile_id_paths(
    rule: Rule, given: Mapping[str, object] | None = None
) -> Iterator[tuple[str, str, str]]:
    """(parameter, raw value, path) with one integer parameter replaced by a hostile value
    as raw text (not through the converter, which would refuse to build it)."""
    for name in int_arguments(rule):
        marker = 987_654_321_123
        values = sample_values(rule, given)
        values[name] = marker
        path = build_path(rule, values)
        for raw in HOSTILE_IDS:
            yield name, raw, path.replace(str(marker), quote(raw, safe="-"), 1)


# URL parameter -> key of `world` (a Case's params override these).
WORLD_PARAMS = {
    "post_id": "post",
    "slug": "post_slug",
    "comment_id": "member_comment",
    "user_id": "bob",
    "username": "member_name",
    "ban_id": "ban",
    "token": "link_token",
}


def world_path(rule: Rule, world: dict, params: dict | None = None) -> str:
    """The rule's URL with every parameter set from the world (`any` takes its first)."""
    names = {**WORLD_PARAMS, **(params or {})}
    given = {}
    for arg in rule_arguments(rule):
        if arg.choices:
            continue
        if arg.name not in names:
            raise KeyError(f"{rule.rule}: add the parameter {arg.name!r} to WORLD_PARAMS")
        given[arg.name] = world[names[arg.name]]
    return build_path(rule, sample_values(rule, given))


def build_world(app) -> dict:
    """One user per role and the objects URLs point at; returns their ids (commits)."""
    from forum.services import notifications

    admin = make_user(Role.ADMIN, username="root")
    moderator = make_user(Role.MODERATOR, username="mod")
    member = make_user(username="member")
    banned = make_user(username="banned", is_banned=True)
    bob = make_user(username="bob")
    post = make_post(admin, title="Walked post")
    tag = Tag(name="Walk", slug="walk")
    post.tags.append(tag)
    member_comment = make_comment(post, user=member, body="The member's comment")
    other_comment = make_comment(post, user=bob, body="Bob's comment")
    pending = make_comment(post, status=Status.PENDING, body="A held guest comment")
    post.wp_id = 7
    member_comment.wp_id = 70
    ban = Ban(kind=BanKind.EMAIL, value="spammer@example.net", created_by_id=admin.id)
    db.session.add(ban)
    db.session.commit()
    link = notifications.moderation_link(pending.id)
    return {
        "users": {
            "member": member.id,
            "banned": banned.id,
            "moderator": moderator.id,
            "admin": admin.id,
        },
        "post": post.id,
        "post_slug": post.slug,
        "tag_slug": tag.slug,
        "member_comment": member_comment.id,
        "other_comment": other_comment.id,
        "pending_comment": pending.id,
        "bob": bob.id,
        "member_name": member.username,
        "ban": ban.id,
        "link_token": link.rstrip("/").rsplit("/", 1)[1],
        "legacy_comment": "70",
    }
