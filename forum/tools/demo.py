"""Demo data written by us: a few posts with threaded discussions and a queue with work."""

from __future__ import annotations

from datetime import timedelta

from forum.extensions import db
from forum.models import Comment, Role, Status, utcnow
from forum.services import accounts, moderation, tree
from forum.services import comments as comment_service
from forum.services import posts as post_service
from forum.services import settings as settings_service

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - documented demo credential, printed by make run

USERS = [
    ("admin", "admin@example.org", Role.ADMIN),
    ("moderator", "moderator@example.org", Role.MODERATOR),
    ("alice", "alice@example.org", Role.MEMBER),
    ("bob", "bob@example.org", Role.MEMBER),
]

POSTS = [
    {
        "title": "Welcome to the forum",
        "author": "admin",
        "tags": ["announcements", "meta"],
        "body": "This is a small discussion forum with a moderation queue at its heart.\n\n"
        "Comments from new people wait for a moderator; regulars are published at once. "
        "Try replying to a comment below.",
        "thread": [
            (
                "alice",
                None,
                "Thanks for setting this up! Is <b>HTML</b> allowed in comments?",
                "approved",
            ),
            ("admin", 0, "A little: bold, italics, links, quotes, lists and code.", "approved"),
            ("guest:Carol", 1, "Can I post links? https://example.org/docs", "approved"),
            ("alice", 2, 'Yes, they get rel="nofollow ugc" like everywhere else.', "approved"),
            ("guest:Dan", 3, "Good to know. And four levels deep works too.", "approved"),
            ("bob", None, "First!\n\nAlso: how do I change my password?", "approved"),
            ("moderator", 5, "From your profile page, once you are signed in.", "approved"),
            ("guest:Erin", None, "Just stopping by to say hello.", "pending"),
            (
                "guest:Buy Cheap Watches",
                None,
                'Best prices <a href="http://spam.example/watches">here</a> and '
                '<a href="http://spam.example/more">here</a>!',
                "spam",
            ),
        ],
    },
    {
        "title": "Which database should a small forum use?",
        "author": "moderator",
        "tags": ["databases", "hosting"],
        "body": "SQLite is the default here, PostgreSQL for production. "
        "What do you run, and why?\n\nTell us about backups too.",
        "thread": [
            (
                "bob",
                None,
                "SQLite in WAL mode has been plenty for our club of 200 people.",
                "approved",
            ),
            ("alice", 0, "Same here. Backups are one `.backup` command.", "approved"),
            ("guest:Frank", 1, "Does it cope with several gunicorn workers writing?", "approved"),
            ("bob", 2, "With a busy timeout and short transactions, yes.", "approved"),
            (
                "guest:Grace",
                None,
                "PostgreSQL from day one: we needed full-text search.",
                "approved",
            ),
            ("guest:Heidi", 4, "Which extension do you use for that?", "pending"),
            (
                "guest:Ivan",
                None,
                "Check out my site https://a.example https://b.example",
                "pending",
            ),
        ],
    },
    {
        "title": "Moderation etiquette",
        "author": "admin",
        "tags": ["meta"],
        "body": "Be kind, assume good faith, and explain every decision.",
        "thread": [
            ("alice", None, "Will I be told why a comment was held?", "approved"),
            ("moderator", 0, "Yes: every held comment shows the rules that held it.", "approved"),
            ("guest:Judy", None, "<script>alert('hi')</script>Is this filtered?", "pending"),
        ],
    },
]


def load() -> str:
    """Create demo users, posts and comments; the caller commits."""
    users = {}
    for name, email, role in USERS:
        users[name] = accounts.create_user(name, email, DEMO_PASSWORD, role)
    db.session.flush()
    start = utcnow() - timedelta(days=len(POSTS) * 3)
    settings = settings_service.load()
    counts = {s: 0 for s in Status}
    for p_index, spec in enumerate(POSTS):
        post = post_service.create_post(
            users[spec["author"]], spec["title"], spec["body"], spec["tags"], ["moderator", "admin"]
        )
        post.created_at = start + timedelta(days=p_index * 3)
        db.session.flush()
        made: list[Comment] = []
        for c_index, (who, parent_index, body, status) in enumerate(spec["thread"]):
            parent = made[parent_index] if parent_index is not None else None
            made.append(
                _comment(
                    post,
                    users,
                    who,
                    parent,
                    body,
                    Status(status),
                    post.created_at + timedelta(hours=c_index + 1),
                    settings,
                )
            )
            counts[Status(status)] += 1
    return (
        f"Loaded {len(POSTS)} posts and {sum(counts.values())} comments "
        f"({counts[Status.PENDING]} pending, {counts[Status.SPAM]} spam). "
        f"Demo accounts: {', '.join(u for u, _, _ in USERS)}; password {DEMO_PASSWORD}"
    )


def _comment(post, users, who, parent, body, status, when, settings) -> Comment:
    """A demo comment through the real path (the sanitizer, the rules, the spam filter's
    score), then given the status the demo script says a moderator gave it."""
    user = users.get(who)
    name = who.removeprefix("guest:")
    comment = comment_service.submit_comment(
        post,
        comment_service.CommentInput(
            body=body,
            parent_id=parent.id if parent else None,
            author_name=name,
            author_email=f"{name.split()[0].lower()}@example.net",
            author_url="https://example.net/" + name.split()[0].lower(),
            ip=f"192.0.2.{len(name) + 10}",
            user_agent="Mozilla/5.0 (demo)",
        ),
        settings,
        user=user,
        own_pending_ids=frozenset([parent.id]) if parent else frozenset(),
        now=when,
    )
    if comment.status is not status:
        moderation.set_status(comment, status, None, when)
        tree.refresh_many([comment])
    return comment


QUEUE_BODIES = [
    "I think the second point deserves more attention.",
    "Could you explain the backup part again? I did not follow it.",
    "Great write-up, thanks!",
    "We tried this at work and it went fine, except for the migrations.",
    "Check my shop https://cheap-watches.example.com and https://cheap-bags.example.com",
    "<script>alert('x')</script>Nice post",
    'Read <a href="javascript:alert(1)">this</a> first',
    "BUY NOW!!! Limited offer, visit https://spam-offers.example.net today",
    "Does anyone know if this works with PostgreSQL 16?",
    "I disagree, respectfully: SQLite is fine for most forums.",
]


def load_queue(count: int, seed: int = 7) -> str:
    """Add `count` mixed comments through the real rules, so the queue has varied work."""
    import random

    from sqlalchemy import select

    from forum.models import Post, Status

    # Demo data, not security: a seeded generator keeps the demo queue reproducible.
    rng = random.Random(seed)  # noqa: S311 # nosec B311
    settings = settings_service.load()
    posts = list(db.session.scalars(select(Post)))
    if not posts:
        return "No posts: run `forum demo` first."
    approved = {
        p.id: list(
            db.session.scalars(
                select(Comment).where(Comment.post_id == p.id, Comment.status == Status.APPROVED)
            )
        )
        for p in posts
    }
    statuses = {s: 0 for s in Status}
    spammers = [(f"Spammer {i}", f"spam{i}@bulk.example", f"203.0.113.{i}") for i in range(5)]
    for n in range(count):
        post = rng.choice(posts)
        if rng.random() < 0.2:
            name, email, ip = rng.choice(spammers)
        else:
            name, email, ip = f"Reader {n}", f"reader{n}@example.net", f"198.51.100.{n % 250}"
        parents = approved[post.id]
        parent = rng.choice(parents) if parents and rng.random() < 0.4 else None
        body = f"{rng.choice(QUEUE_BODIES)} (#{n})"
        comment = comment_service.submit_comment(
            post,
            comment_service.CommentInput(
                body=body,
                parent_id=parent.id if parent else None,
                author_name=name,
                author_email=email,
                ip=ip,
                user_agent="Mozilla/5.0 (demo queue)",
            ),
            settings,
        )
        comment.created_at = utcnow() - timedelta(minutes=count - n)
        statuses[comment.status] += 1
    held = ", ".join(f"{v} {k.value}" for k, v in statuses.items() if v)
    return f"Added {count} comments to the queue ({held})."
