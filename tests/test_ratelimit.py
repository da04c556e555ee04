"""Rate limits on commenting, kept in memory and in Redis.

The Redis runs use a key prefix of their own, so parallel runs on one server never
share counters, and delete their keys afterwards. Without a Redis server the Redis cases
are skipped, unless FORUM_REQUIRE_REDIS=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest
import redis
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import Comment, Role
from tests.factories import make_post, make_user
from tests.helpers import login_as

REDIS_URL = os.environ.get("FORUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_PREFIX = f"forum-test-{uuid.uuid4().hex[:12]}"
LIMIT = 3


def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        message = f"Redis not reachable at {REDIS_URL}: {error}"
        if os.environ.get("FORUM_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return client


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest):
    """The storage URI; for Redis, the keys of this run are deleted afterwards."""
    if request.param == "memory":
        yield "memory://"
        return
    client = redis_client()
    try:
        yield REDIS_URL
    finally:
        keys = list(client.scan_iter(match=f"{RUN_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def app_config(storage: str) -> dict:
    return {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": storage,
        # Both prefixes: the storage's (limiter.reset() deletes only its own keys) and
        # Flask-Limiter's.
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": RUN_PREFIX},
        "RATELIMIT_KEY_PREFIX": RUN_PREFIX,
        "RATELIMIT_COMMENT": f"{LIMIT} per minute",
    }


@pytest.fixture
def post_id(app) -> int:
    with app.app_context():
        post = make_post(make_user(Role.ADMIN), title="Limited")
        db.session.commit()
        return post.id


def comment(client, post_id: int, n: int, ip: str = "192.0.2.1", **extra):
    data = {
        "author_name": "Rita",
        "author_email": f"rita{n}@example.org",
        "body": f"Comment {n} & more",
        **extra,
    }
    return client.post(f"/posts/{post_id}/comments", data=data, environ_base={"REMOTE_ADDR": ip})


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Comment.id)))


def test_comments_over_the_limit_get_429_with_the_text_kept(app, client, post_id):
    for n in range(LIMIT):
        assert comment(client, post_id, n).status_code == 302
    resp = comment(client, post_id, 99, body="Typed <i>carefully</i>\nover two lines")
    assert resp.status_code == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 60
    page = resp.get_data(as_text=True)
    assert "You are commenting too often" in page
    assert "Typed &lt;i&gt;carefully&lt;/i&gt;\nover two lines</textarea>" in page
    assert re.search(r'name="author_email"[^>]*value="rita99@example.org"', page)
    assert stored(app) == LIMIT


def test_the_limit_is_per_address_for_guests(app, client, post_id):
    for n in range(LIMIT):
        assert comment(client, post_id, n, ip="192.0.2.1").status_code == 302
    assert comment(client, post_id, 10, ip="192.0.2.1").status_code == 429
    assert comment(client, post_id, 11, ip="198.51.100.7").status_code == 302
    assert stored(app) == LIMIT + 1


def test_a_members_limit_follows_the_account_across_addresses(app, client, post_id):
    with app.app_context():
        user_id = make_user(username="roaming").id
        db.session.commit()
    login_as(client, user_id)
    for n in range(LIMIT):
        assert comment(client, post_id, n, ip=f"203.0.113.{n + 1}").status_code == 302
    assert comment(client, post_id, 50, ip="203.0.113.200").status_code == 429
    assert stored(app) == LIMIT


@pytest.mark.parametrize("storage", ["redis"], indirect=True)
def test_redis_holds_the_counters_under_the_runs_prefix(app, client, post_id):
    assert comment(client, post_id, 1).status_code == 302
    client_redis = redis_client()
    try:
        keys = [k.decode() for k in client_redis.scan_iter(match=f"{RUN_PREFIX}*")]
    finally:
        client_redis.close()
    assert keys and all(k.startswith(RUN_PREFIX) for k in keys)
    assert any("192.0.2.1" in k for k in keys)
