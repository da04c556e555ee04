"""Absolute links, built from the configured BASE_URL and never from the request's Host.

A link in a password-reset mail, a moderators' digest or an Atom feed outlives the
request that made it; if it followed the Host header, whoever sent a spoofed Host would
receive the tokens in it. `absolute_url_for` is the one way the forum builds them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from werkzeug.routing import MapAdapter

# `make run` and the tests serve here when FORUM_BASE_URL is unset.
DEVELOPMENT_BASE_URL = "http://127.0.0.1:5000"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def normalize_base_url(value: str) -> str:
    """An absolute http(s) URL without a trailing slash; anything else is a config error."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"FORUM_BASE_URL must be the forum's absolute address, like "
            f"https://forum.example.org, not {value!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"FORUM_BASE_URL takes no query or fragment: {value!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def trusted_hosts(base_url: str, configured: Any) -> list[str]:
    """The hosts a request may name: FORUM_TRUSTED_HOSTS, or the base URL's host (plus the
    loopback names when the base URL itself is local, as in development)."""
    if isinstance(configured, str):
        configured = configured.replace(",", " ").split()
    if configured:
        return [str(host) for host in configured]
    host = urlsplit(base_url).hostname or ""
    if host in LOOPBACK_HOSTS:
        return list(LOOPBACK_HOSTS)
    return [host]


def _adapter(app: Flask) -> MapAdapter:
    adapter = app.extensions.get("forum.base_url_adapter")
    if adapter is None:
        base = urlsplit(app.config["BASE_URL"])
        adapter = app.url_map.bind(
            base.netloc, script_name=base.path or "/", url_scheme=base.scheme
        )
        app.extensions["forum.base_url_adapter"] = adapter
    return adapter


def absolute_url_for(endpoint: str, **values: Any) -> str:
    """The absolute URL of `endpoint` under BASE_URL, inside a request or not."""
    return _adapter(current_app._get_current_object()).build(  # type: ignore[attr-defined]
        endpoint, values, force_external=True
    )
