"""gunicorn settings for `make serve`; every value can be overridden by GUNICORN_* env."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Two workers per core plus one, the usual rule for sync workers; capped for small hosts.
workers = int(os.environ.get("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, 9)))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
keepalive = 5
# Recycle workers now and then so a slow leak can never take a worker down.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
# The usual combined format plus the time taken in milliseconds; behind nginx with
# FORUM_PROXY_FIX=1, %(h)s is the proxy and the client is in X-Forwarded-For.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms '
    'xff="%({x-forwarded-for}i)s"'
)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Load the app in each worker: no database connection is shared across a fork.
preload_app = False
# gunicorn 25+ listens for `gunicornc` on one socket per user by default
# ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl), so two servers of one user would
# share it: give each its own path, or "off".
_control = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
if _control == "off":
    control_socket_disable = True
elif _control:
    control_socket = _control


def on_starting(server):
    """Refuse to serve without FORUM_BASE_URL: links in mail and feeds are built from it,
    and guessing (or taking the request's Host) would send them somewhere else."""
    from forum import create_app

    if not create_app().config["BASE_URL_CONFIGURED"]:
        server.log.error(
            "FORUM_BASE_URL is not set: set it to the forum's public address, e.g. "
            "FORUM_BASE_URL=https://forum.example.org (or BASE_URL in instance/config.py)."
        )
        raise SystemExit(2)


def post_worker_init(worker):
    """Once the app is loaded, move everything it made into the collector's permanent
    generation: the full collections that every request's garbage sets off then walk the
    objects requests make, not the hundred thousand the app keeps for its whole life
    (modules, mappers, templates). The dashboard's p99 at 100,000 pending went from 55 to
    18-20 ms (bench/NOTES.md, "Garbage collection pauses")."""
    import gc

    gc.collect()
    gc.freeze()
