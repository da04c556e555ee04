"""Settings an admin changes at run time: stored in the database, defaults from config."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import Text, cast, select

from forum.extensions import db
from forum.models import Setting

MODES = ("all", "first-time", "off")


@dataclass(frozen=True)
class Settings:
    moderation_mode: str = "first-time"
    max_links: int = 2
    hold_words: tuple[str, ...] = ()
    block_words: tuple[str, ...] = ()
    hold_on_sanitized: bool = True
    min_submit_seconds: int = 3
    max_depth: int = 5
    threads_per_page: int = 50
    edit_window_minutes: int = 10
    close_after_days: int = 0
    flags_to_requeue: int = 3
    digest_minutes: int = 15
    comment_max_length: int = 10_000
    duplicate_window_seconds: int = 60
    # The spam filter (services/spam_filter.py; defaults measured in docs/spam-filter.md):
    # a score at or above spam_threshold sends a comment to Spam, at or above
    # spam_hold_threshold holds it; 1 turns either off. It decides nothing until it has
    # learned from spam_min_decisions decisions of each kind.
    spam_threshold: float = 0.8
    spam_hold_threshold: float = 0.5
    spam_min_decisions: int = 10
    extra: dict[str, Any] = field(default_factory=dict)


# Config keys that seed a setting before an admin changes it.
CONFIG_SEEDS = {
    "max_depth": "COMMENT_MAX_DEPTH",
    "threads_per_page": "COMMENT_THREADS_PER_PAGE",
    "edit_window_minutes": "COMMENT_EDIT_WINDOW_MINUTES",
    "close_after_days": "COMMENT_CLOSE_AFTER_DAYS",
    "comment_max_length": "COMMENT_MAX_LENGTH",
    "duplicate_window_seconds": "COMMENT_DUPLICATE_WINDOW_SECONDS",
    "moderation_mode": "MODERATION_MODE",
    "max_links": "MODERATION_MAX_LINKS",
    "min_submit_seconds": "MODERATION_MIN_SUBMIT_SECONDS",
    "flags_to_requeue": "MODERATION_FLAGS_TO_REQUEUE",
    "digest_minutes": "MODERATION_DIGEST_MINUTES",
}

EDITABLE = tuple(f.name for f in dataclasses.fields(Settings) if f.name != "extra")


def defaults() -> Settings:
    """Settings from config alone."""
    values: dict[str, Any] = {}
    for name, key in CONFIG_SEEDS.items():
        if key in current_app.config:
            values[name] = current_app.config[key]
    return _coerce(values)


def load() -> Settings:
    """Current settings: stored values over config defaults (one query).

    Built once for each set of stored rows (as their JSON text) and config seeds, and
    shared: Settings is frozen, so a request never sees another's values, and any change
    of a row or a seed is a new key (building them was 0.1 ms of every comment POST:
    bench/NOTES.md, session 11).
    """
    config = current_app.config
    rows = tuple(tuple(row) for row in db.session.execute(_STORED))  # autoflushes
    key = (rows, tuple(config.get(name, _UNSET) for name in CONFIG_SEEDS.values()))
    found = _BUILT.get(key)
    if found is None:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        found = _BUILT[key] = _build(rows)
    return found


def _build(rows: tuple[tuple[str, str | None], ...]) -> Settings:
    base = dataclasses.asdict(defaults())
    stored = {k: json.loads(v) if v is not None else None for k, v in rows}
    base.update({k: v for k, v in stored.items() if k in EDITABLE})
    base.pop("extra", None)
    return _coerce(base)


# The stored values as the JSON text they are kept as: a key for _BUILT, decoded once.
_STORED = select(Setting.key, cast(Setting.value, Text)).order_by(Setting.key)
_BUILT: dict[tuple, Settings] = {}
_BUILT_MAX = 64
_UNSET = object()  # a seed the config does not set (not the same as a seed set to None)


def save(values: dict[str, Any]) -> Settings:
    """Store the given settings (validated); None keeps a setting as it is. The caller commits."""
    values = {k: v for k, v in values.items() if v is not None}
    current = dataclasses.asdict(load())
    current.pop("extra", None)
    current.update({k: v for k, v in values.items() if k in EDITABLE})
    settings = _coerce(current)
    for name in values:
        if name not in EDITABLE:
            continue
        value = getattr(settings, name)
        value = list(value) if isinstance(value, tuple) else value
        row = db.session.get(Setting, name)
        if row is None:
            db.session.add(Setting(key=name, value=value))
        else:
            row.value = value
    return settings


def _coerce(values: dict[str, Any]) -> Settings:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name not in values or f.name == "extra":
            continue
        value = values[f.name]
        if f.type == "int":
            value = max(0, int(value))
        elif f.type == "float":
            value = min(1.0, max(0.0, float(value)))
        elif f.type == "bool":
            value = bool(value)
        elif f.type == "tuple[str, ...]":
            if value is None:  # a list field left out of the form: no words
                value = ()
            elif isinstance(value, str):
                value = value.splitlines()
            value = tuple(w.strip() for w in value if w and w.strip())
        elif f.name == "moderation_mode" and value not in MODES:
            raise ValueError(f"unknown moderation mode {value!r}")
        out[f.name] = value
    return Settings(**out)
