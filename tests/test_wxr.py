"""Importing WordPress exports (WXR) with `forum import-wxr`."""

from __future__ import annotations

import io
import re
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import (
    Comment,
    CommentKind,
    HoldReason,
    ModerationAction,
    Post,
    Role,
    Status,
    Tag,
    User,
)
from forum.tools import demo, transfer, wxr
from tests.factories import make_user
from tests.helpers import count_queries, login_as

DATA = Path(__file__).parent / "data" / "wxr"
BLOG = DATA / "hedgerow-blog.xml"
SITE = "wxr:hedgerow.example"
WP = "{http://wordpress.org/export/1.2/}"


def import_file(app, path: Path, *extra: str):
    return app.test_cli_runner().invoke(args=["forum", "import-wxr", str(path), *extra])


def by_wp_id(post_wp_id: int = 101) -> dict[int, Comment]:
    """The imported comments of one blog post, by their WordPress comment id."""
    post = db.session.scalars(
        select(Post).where(Post.import_key == f"{SITE}:post:{post_wp_id}")
    ).one()
    comments = db.session.scalars(select(Comment).where(Comment.post_id == post.id)).all()
    return {int(c.import_key.rsplit(":", 1)[1]): c for c in comments}


def source_comments(path: Path = BLOG, post_wp_id: int = 101) -> dict[int, dict[str, str]]:
    """The comments of one item as the file has them, read independently of the importer."""
    for item in ET.parse(path).getroot().iter("item"):  # noqa: S314 - our own fixture
        if item.findtext(f"{WP}post_id") == str(post_wp_id):
            return {
                int(c.findtext(f"{WP}comment_id")): {
                    child.tag.removeprefix(WP): child.text or "" for child in c
                }
                for c in item.iter(f"{WP}comment")
            }
    raise AssertionError(f"no item {post_wp_id}")


def counts() -> dict[str, int]:
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (User, Post, Tag, Comment, HoldReason)
    }


# Small WXR documents for targeted cases ---------------------------------------------


def comment_xml(
    cid: int,
    parent: int = 0,
    status: str = "1",
    content: str = "Hello.",
    kind: str = "",
    date: str = "2023-05-01 11:00:00",
    author: str = "Ann",
) -> str:
    return f"""
      <wp:comment>
        <wp:comment_id>{cid}</wp:comment_id>
        <wp:comment_author><![CDATA[{author}]]></wp:comment_author>
        <wp:comment_author_email>c{cid}@example.org</wp:comment_author_email>
        <wp:comment_date_gmt>{date}</wp:comment_date_gmt>
        <wp:comment_content><![CDATA[{content}]]></wp:comment_content>
        <wp:comment_approved>{status}</wp:comment_approved>
        <wp:comment_type>{kind}</wp:comment_type>
        <wp:comment_parent>{parent}</wp:comment_parent>
      </wp:comment>"""


def item_xml(post_id: int, comments: str = "", title: str = "A post", **fields: str) -> str:
    values = {"post_type": "post", "status": "publish", "post_date_gmt": "2023-05-01 10:00:00"}
    values.update(fields)
    extra = "".join(f"<wp:{k}>{v}</wp:{k}>" for k, v in values.items())
    return f"""
    <item>
      <title>{title}</title>
      <dc:creator>editor</dc:creator>
      <content:encoded><![CDATA[Body of {post_id}.]]></content:encoded>
      <wp:post_id>{post_id}</wp:post_id>{extra}{comments}
    </item>"""


def wxr_document(
    *items: str,
    site: str = "https://small.example",
    prolog: str = "",
    namespace: str = "http://wordpress.org/export/1.2/",
    version: str | None = "1.2",
    base_url: bool = True,
    link: bool = True,
    display_name: str = "",
) -> str:
    header = f"<link>{site}</link>" if link else ""
    if version is not None:
        header += f"<wp:wxr_version>{version}</wp:wxr_version>"
    if base_url:
        header += f"<wp:base_site_url>{site}</wp:base_site_url>"
    shown = f"<wp:author_display_name>{display_name}</wp:author_display_name>"
    return f"""<?xml version="1.0" encoding="UTF-8"?>{prolog}
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="{namespace}">
  <channel>
    <title>Small</title>
    {header}
    <wp:author><wp:author_id>1</wp:author_id><wp:author_login>editor</wp:author_login>
      <wp:author_email>editor@small.example</wp:author_email>{shown}</wp:author>{"".join(items)}
  </channel>
</rss>
"""


def run_import(app, text: str) -> wxr.ImportSummary:
    with app.app_context():
        summary = wxr.import_wxr(io.BytesIO(text.encode()))
        db.session.commit()
        return summary


# The real-looking blog ---------------------------------------------------------------


def test_blog_imports_with_exact_nesting_statuses_and_dates(app):
    result = import_file(app, BLOG)
    assert result.exit_code == 0, result.output
    assert "Posts: 2 imported" in result.output
    assert "41 imported (4 pending, 32 approved, 3 spam, 2 rejected)" in result.output
    assert "1 page item(s)" in result.output and "1 draft post(s)" in result.output
    source = source_comments()
    with app.app_context():
        imported = by_wp_id()
        assert set(imported) == set(source)
        ids = {wp_id: c.id for wp_id, c in imported.items()}
        status_of = {
            "1": Status.APPROVED,
            "0": Status.PENDING,
            "spam": Status.SPAM,
            "trash": Status.REJECTED,
        }
        for wp_id, original in source.items():
            comment = imported[wp_id]
            parent = int(original["comment_parent"])
            assert comment.parent_id == (ids[parent] if parent else None), wp_id
            assert comment.status is status_of[original["comment_approved"]], wp_id
            assert comment.created_at.strftime("%Y-%m-%d %H:%M:%S") == original["comment_date_gmt"]
            assert comment.body_source == original["comment_content"]
            assert comment.kind.value == (original["comment_type"] or "comment")
        # Deeper than the depth setting (5), kept exactly as in the source.
        assert imported[1007].depth == 6
        assert imported[1007].path.count("/") == 6
        assert imported[1007].path.startswith(imported[1001].path + "/")
        # 1030 is listed before its parent 1031 in the file.
        assert imported[1030].parent_id == imported[1031].id
        assert imported[1033].path.startswith(imported[1031].path + "/")
        # Siblings in date order, whatever order the file lists them in.
        assert imported[1032].path < imported[1030].path
        visible = [c for c in imported.values() if c.visible]
        assert len(visible) == 31 == sum(1 for c in source.values() if c["comment_approved"] == "1")
        assert {c.kind for c in imported.values()} == set(CommentKind)


def test_blog_imports_sanitized_bodies_authors_tags_and_reasons(app):
    with app.app_context():
        existing = make_user(username="alice", email="ALICE@example.org")
        db.session.commit()
        alice_id = existing.id
    assert import_file(app, BLOG).exit_code == 0
    with app.app_context():
        imported = by_wp_id()
        tom = imported[1013]
        assert tom.author_name == "Tom & Jerry"
        assert tom.author_url == ""  # javascript: is never kept
        assert "<script>" in tom.body_source and "<script" not in tom.body_html
        assert "<b>Bold</b>" in tom.body_html and tom.sanitizer_report == ["tag <script>"]
        assert imported[1010].author_name == "李明" and "全麦面粉" in imported[1010].body_html
        assert imported[1009].ip == "203.0.113.90" and imported[1010].ip == "2001:db8::1"
        assert imported[1001].author_url == "https://marta.example.net"
        assert imported[1012].link_domain == "watches.example"
        for c in imported.values():
            expected = [] if c.status is Status.APPROVED else [("imported", c.status)]
            assert [(r.rule, c.status) for r in c.reasons] == expected
        assert imported[1008].reasons[0].detail == 'WordPress status "0" (pending)'
        assert imported[1020].reasons[0].detail == 'WordPress status "trash" (rejected)'

        hannah = db.session.scalars(select(User).where(User.username == "hannah")).one()
        assert hannah.password_hash is None and hannah.role is Role.MEMBER
        assert hannah.import_key == f"{SITE}:author:hannah"
        assert imported[1002].user_id == hannah.id
        # alice.b is matched by email (any case) to the member who was already here.
        assert imported[1036].user_id == alice_id
        assert db.session.scalar(select(func.count(User.id))) == 2

        post = db.session.scalars(select(Post).where(Post.author_id == hannah.id)).one()
        assert post.title == "Sourdough starter, week by week & what to expect"
        assert post.created_at.isoformat() == "2024-03-02T08:15:00+00:00"
        assert post.updated_at.isoformat() == "2024-03-05T17:00:00+00:00"
        assert "<!-- wp:paragraph -->" in post.body_source
        assert "<h2>Week one</h2>" in post.body_html and "onerror" not in post.body_html
        assert [t.name for t in post.tags] == ["Baking", "Fermentation & Friends", "sourdough"]
        closed = db.session.scalars(select(Post).where(Post.title == "Hedge-laying season")).one()
        assert closed.comments_open is False and closed.author_id == alice_id


def test_imported_blog_reads_as_it_did_there(app, client):
    with app.app_context():
        demo.load()
        db.session.commit()
    assert import_file(app, BLOG).exit_code == 0
    with app.app_context():
        imported = by_wp_id()
        post = imported[1001].post
        url = f"/posts/{post.id}/{post.slug}"
        order = sorted(
            (c for c in imported.values() if c.visible and c.kind is CommentKind.COMMENT),
            key=lambda c: c.path,
        )
        expected_anchors = [c.anchor for c in order]
        hidden = [c.anchor for c in imported.values() if not c.visible]
        moderator = db.session.scalars(select(User).where(User.username == "moderator")).one()
        moderator = (moderator.id, moderator.session_token)
    html = client.get(url).get_data(as_text=True)
    assert "31 Responses" in html
    assert re.findall(r'<li class="comment[^"]*" id="(comment-\d+)"', html) == expected_anchors
    assert not any(f'id="{anchor}"' in html for anchor in hidden)
    pingbacks = html[html.index('class="pingbacks"') :]
    assert "A Baker&#39;s Log" in pingbacks and "Crumb Shots" in pingbacks
    assert "Spammy Link Farm" not in html and "Cheap Watches" not in html
    assert "Спасибо!" in html and "<script>alert" not in html
    # The pending ones wait in the moderators' queue.
    login_as(client, *moderator)
    queue = client.get("/moderation/").get_data(as_text=True)
    for name in ("Pete", "Keith", "Yusuf", "Jonas"):
        assert name in queue


def test_importing_the_same_file_twice_changes_nothing(app):
    assert import_file(app, BLOG).exit_code == 0
    with app.app_context():
        before = io.StringIO()
        transfer.export_json(before)
    with count_queries(app) as statements:
        result = import_file(app, BLOG)
    assert result.exit_code == 0, result.output
    assert "Posts: 0 imported, 2 already present" in result.output
    assert "0 imported (none)" in result.output and "41 already present" in result.output
    writes = [
        s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    with app.app_context():
        after = io.StringIO()
        transfer.export_json(after)
    assert after.getvalue() == before.getvalue()


def test_dry_run_checks_and_counts_but_writes_nothing(app):
    result = import_file(app, BLOG, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "41 imported" in result.output and "Dry run: nothing was written." in result.output
    with app.app_context():
        assert set(counts().values()) == {0}


def test_a_later_export_adds_only_new_comments_under_old_parents(app):
    first = wxr_document(item_xml(7, comment_xml(1) + comment_xml(2, parent=1)))
    later = wxr_document(
        item_xml(
            7,
            comment_xml(1)
            + comment_xml(2, parent=1)
            + comment_xml(3, parent=2, date="2023-06-01 09:00:00"),
        )
    )
    run_import(app, first)
    summary = run_import(app, later)
    assert summary.posts_present == 1 and summary.comments_present == 2
    assert summary.comments_created[Status.APPROVED] == 1
    with app.app_context():
        comments = {c.import_key.rsplit(":", 1)[1]: c for c in db.session.scalars(select(Comment))}
        assert comments["3"].parent_id == comments["2"].id and comments["3"].depth == 2
        assert comments["3"].path.startswith(comments["2"].path + "/") and comments["3"].visible


def test_replies_under_a_held_comment_are_not_visible(app):
    run_import(
        app,
        wxr_document(
            item_xml(
                1,
                comment_xml(1, status="trash")
                + comment_xml(2, parent=1)
                + comment_xml(3, parent=2, status="0"),
            )
        ),
    )
    with app.app_context():
        rows = db.session.execute(
            select(Comment.status, Comment.visible).order_by(Comment.path)
        ).all()
        assert rows == [(Status.REJECTED, False), (Status.APPROVED, False), (Status.PENDING, False)]


def test_long_chain_keeps_every_level(app):
    chain = "".join(comment_xml(i, parent=i - 1 if i > 1 else 0) for i in range(1, 41))
    run_import(app, wxr_document(item_xml(1, chain)))
    with app.app_context():
        depths = db.session.scalars(select(Comment.depth).order_by(Comment.path)).all()
        assert depths == list(range(40))
        assert db.session.scalar(select(func.count()).where(Comment.visible.is_(True))) == 40


def test_author_login_that_is_taken_gets_a_free_username(app):
    with app.app_context():
        make_user(username="editor", email="someone-else@example.org")
        db.session.commit()
    run_import(app, wxr_document(item_xml(1)))
    with app.app_context():
        names = set(db.session.scalars(select(User.username)))
        assert names == {"editor", "editor-2"}


def test_unicode_html_and_entities_in_bodies(app):
    body = "Ça marche 👍 <em>très</em> bien &amp; voilà <iframe src=x></iframe>\n\n¡Sí! שלום"
    run_import(
        app,
        wxr_document(
            item_xml(
                1,
                comment_xml(1, content=body, author="Zoë &amp; Co"),
                title="Caf&#233; &amp;amp; cr&#232;me",
            )
        ),
    )
    with app.app_context():
        comment = db.session.scalars(select(Comment)).one()
        assert comment.body_source == body
        assert comment.author_name == "Zoë & Co"
        assert comment.body_html == (
            "<p>Ça marche 👍 <em>très</em> bien &amp; voilà</p>\n<p>¡Sí! שלום</p>"
        )
        assert comment.sanitizer_report == ["tag <iframe>"]
        assert db.session.scalars(select(Post.title)).one() == "Café & crème"


# Broken files ------------------------------------------------------------------------


def test_broken_xml_imports_nothing_and_says_where(app):
    result = import_file(app, DATA / "broken-xml.xml")
    assert result.exit_code == 1
    assert "line 54: malformed XML: mismatched tag" in result.output
    assert "Nothing was imported." in result.output
    with app.app_context():
        # The first item was fine and written before the error: it was rolled back.
        assert set(counts().values()) == {0}


BILLION_LAUGHS = """
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>"""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (wxr_document(item_xml(1), prolog=BILLION_LAUGHS), "a DTD or entity declaration"),
        ("<?xml version='1.0'?>\n<feed><entry/></feed>", "the root is <feed>, not <rss>"),
        (
            "<rss><channel><title>Plain RSS</title><item><title>x</title></item></channel></rss>",
            "no <wp:wxr_version> in the channel and no WordPress elements",
        ),
        (wxr_document(item_xml(1)).split("</channel>")[0], "malformed XML: no element found"),
        (wxr_document(item_xml(1), version="2.0"), "unsupported WXR version '2.0'"),
        (wxr_document(item_xml(1), version="abc"), "invalid WXR version 'abc'"),
        # What the real files that WordPress refuses too do: an unescaped "&", a CDATA
        # section inside another, a prefix nobody declared.
        (
            wxr_document(item_xml(1)).replace(
                "<title>A post", "<link>https://x.example/?a=1&b=2</link><title>A post"
            ),
            "malformed XML: not well-formed",
        ),
        (
            wxr_document(item_xml(1)).replace("Body of 1.", "Nested <![CDATA[ tags ]]> :)"),
            "malformed XML: not well-formed",
        ),
        (
            wxr_document(item_xml(1)).replace(
                "<title>A post", "<unknown:field>x</unknown:field><title>A post"
            ),
            "malformed XML: unbound prefix",
        ),
        (
            wxr_document(item_xml(1)).replace("<channel>", "<notachannel>", 1),
            "unexpected <notachannel> outside <channel>",
        ),
    ],
)
def test_hostile_and_malformed_documents_are_refused(app, text, problem):
    with app.app_context(), pytest.raises(wxr.WXRError) as caught:
        wxr.import_wxr(io.BytesIO(text.encode()))
    assert problem in str(caught.value)
    assert caught.value.line is None or caught.value.line >= 1


# Odd records: repaired or skipped, each with a warning and a count --------------------


def test_a_reply_whose_parent_is_not_in_the_file_goes_to_the_top_level(app):
    result = import_file(app, DATA / "missing-parent.xml")
    assert result.exit_code == 0, result.output
    assert "Warning: line 50: comment 3: its parent 77 is not a comment of this post: " in (
        result.output
    )
    assert "Repaired: 1 moved to the top level" in result.output
    with app.app_context():
        orphan = db.session.scalars(select(Comment).where(Comment.wp_id == 3)).one()
        assert orphan.parent_id is None and orphan.depth == 0 and orphan.visible


def test_an_unknown_or_empty_status_is_held_as_pending(app):
    result = import_file(app, DATA / "unknown-status.xml")
    assert result.exit_code == 0, result.output
    assert "comment 3: unknown ('approve') <wp:comment_approved>: held as pending" in (
        result.output
    )
    summary = run_import(app, wxr_document(item_xml(1, comment_xml(1, status=""))))
    assert summary.comments_created == {Status.PENDING: 1}
    assert summary.repaired == {"held as pending (empty or unknown status)": 1}
    assert "comment 1: empty <wp:comment_approved>: held as pending" in summary.warnings[0]


@pytest.mark.parametrize(
    ("comments", "skipped", "warning"),
    [
        (comment_xml(1, kind="note"), "notes (private, never published)", "a private note"),
        (comment_xml(1, kind="webmention"), "of type 'webmention'", "unknown comment type"),
        (comment_xml(1, date="yesterday"), "with a bad date", "is not a date ('yesterday')"),
        (comment_xml(1) + comment_xml(1), "duplicates", "comment 1: appears twice"),
        (
            comment_xml(1).replace("<wp:comment_id>1<", "<wp:comment_id>x<"),
            "without an id",
            "<wp:comment_id> 'x' is not an id",
        ),
    ],
)
def test_odd_comments_are_skipped_with_a_warning_and_counted(app, comments, skipped, warning):
    summary = run_import(app, wxr_document(item_xml(1, comment_xml(9) + comments)))
    assert summary.comments_created == {Status.APPROVED: 1 if "appears" not in warning else 2}
    assert summary.comments_skipped == {skipped: 1}
    assert any(warning in line for line in summary.warnings), summary.warnings
    assert summary.comments_in_file == summary.comments_created.total() + 1
    assert f"Comments skipped: 1 {skipped}." in str(summary)


def test_a_note_is_never_published_and_its_reply_loses_its_parent(app):
    summary = run_import(
        app,
        wxr_document(item_xml(1, comment_xml(1, kind="note") + comment_xml(2, parent=1))),
    )
    with app.app_context():
        comment = db.session.scalars(select(Comment)).one()
        assert comment.wp_id == 2 and comment.parent_id is None
    assert summary.comments_skipped == {"notes (private, never published)": 1}


def test_a_reply_loop_is_broken_at_its_oldest_comment(app):
    loop = comment_xml(1, parent=2) + comment_xml(2, parent=1, date="2023-05-02 11:00:00")
    summary = run_import(app, wxr_document(item_xml(1, loop)))
    assert "comment 1: it is in a loop of replies to replies" in summary.warnings[0]
    with app.app_context():
        rows = dict(db.session.execute(select(Comment.wp_id, Comment.depth)).all())
        assert rows == {1: 0, 2: 1}


def test_a_reply_to_a_comment_of_another_post_goes_to_the_top_level(app):
    summary = run_import(
        app, wxr_document(item_xml(1, comment_xml(1)), item_xml(2, comment_xml(2, parent=1)))
    )
    assert "comment 2: its parent 1 is not a comment of this post" in summary.warnings[0]
    with app.app_context():
        assert db.session.scalar(select(Comment.parent_id).where(Comment.wp_id == 2)) is None


def test_comments_on_skipped_items_and_duplicate_posts_are_counted(app):
    summary = run_import(
        app,
        wxr_document(
            item_xml(1, comment_xml(1)),
            item_xml(1, comment_xml(2)),
            item_xml(2, comment_xml(3) + comment_xml(4), post_type="page"),
            item_xml(3, comment_xml(5), post_password="secret"),
            item_xml(4, comment_xml(6), status="draft"),
            item_xml(5, comment_xml(7), post_date_gmt="soon"),
        ),
    )
    assert summary.posts_created == 2  # post 5 is dated at the import
    assert (
        "post 5: <wp:post_date_gmt> is not a date ('soon'): dated at the import"
        in (summary.warnings[1])
    )
    assert summary.comments_skipped == {
        "on duplicate posts": 1,
        "on pages": 2,
        "on password-protected posts": 1,
        "on draft posts": 1,
    }
    assert summary.comments_created.total() == 2 and summary.comments_in_file == 7
    assert "post 1: appears twice (first at line" in summary.warnings[0]
    assert "Comments: 2 imported (2 approved)" in str(summary)
    assert "7 in the file." in str(summary)


def test_too_deep_nesting_is_attached_at_the_deepest_level(app):
    depth = wxr.MAX_DEPTH + 3  # levels 0 to MAX_DEPTH fit, the last two do not
    chain = "".join(comment_xml(i, parent=i - 1 if i > 1 else 0) for i in range(1, depth + 1))
    summary = run_import(app, wxr_document(item_xml(1, chain)))
    assert summary.comments_created == {Status.APPROVED: depth}
    assert summary.repaired == {f"attached at level {wxr.MAX_DEPTH} (nested deeper)": 2}
    with app.app_context():
        assert db.session.scalar(select(func.max(Comment.depth))) == wxr.MAX_DEPTH


# Every export WordPress takes ---------------------------------------------------------


@pytest.mark.parametrize(
    "namespace",
    [
        "https://wordpress.org/export/1.2/",
        "http://wordpress.org/export/1.0/",
        "http://wordpress.org/export/1.1/",
    ],
)
def test_every_namespace_spelling_and_version_imports(app, namespace):
    version = namespace.rstrip("/").rsplit("/", 1)[1]
    summary = run_import(
        app, wxr_document(item_xml(1, comment_xml(1)), namespace=namespace, version=version)
    )
    assert summary.posts_created == 1 and summary.comments_created == {Status.APPROVED: 1}
    assert summary.assumed == []


def test_a_file_without_version_or_base_url_says_what_was_assumed(app):
    summary = run_import(app, wxr_document(item_xml(1), version=None, base_url=False))
    assert summary.posts_created == 1
    assert summary.assumed == [
        "no <wp:wxr_version> in the channel: read as WXR 1.0.",
        "no <wp:base_site_url>: the blog is https://small.example (the channel <link>).",
    ]
    with app.app_context():
        assert db.session.scalar(select(Post.import_key)) == "wxr:small.example:post:1"


def test_a_file_without_any_address_is_told_by_its_title(app):
    text = wxr_document(item_xml(1), base_url=False, link=False)
    first = run_import(app, text)
    assert "the blog is told by its title ('Small')" in first.assumed[0]
    again = run_import(app, text)
    assert (again.posts_created, again.posts_present) == (0, 1)


def test_a_post_without_an_id_takes_the_one_in_its_guid(app):
    item = item_xml(1).replace("<wp:post_id>1</wp:post_id>", "")
    item = item.replace("<title>", "<guid>https://small.example/?p=19</guid><title>")
    summary = run_import(app, wxr_document(item))
    assert summary.posts_created == 1
    assert "no <wp:post_id>: the id in its ?p= link used" in summary.warnings[0]
    with app.app_context():
        assert db.session.scalar(select(Post.wp_id)) == 19


def test_an_item_outside_the_wordpress_namespace_is_skipped(app):
    hijacked = item_xml(1).replace("<item>", '<item xmlns:wp="http://hijack.example/">')
    summary = run_import(app, wxr_document(hijacked, item_xml(2)))
    assert summary.posts_created == 1
    assert summary.skipped == {"item(s) not from WordPress": 1}


# Large files -------------------------------------------------------------------------


def big_export(path: Path, posts: int, per_post: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        head, tail = wxr_document("<!--items-->").split("<!--items-->")
        out.write(head)
        n = 0
        for p in range(1, posts + 1):
            comments = []
            for i in range(per_post):
                n += 1
                parent = n - 1 if i % 3 else 0  # threads three deep
                status = "0" if i % 9 == 2 else "1"  # held replies at the ends of threads
                comments.append(
                    comment_xml(
                        n, parent=parent, status=status, content=f"Comment {n} " + "words " * 40
                    )
                )
            out.write(item_xml(p, "".join(comments)))
        out.write(tail)


def test_a_few_thousand_comments_import(app, tmp_path):
    path = tmp_path / "big.xml"
    big_export(path, posts=20, per_post=100)
    seen = []
    with app.app_context():
        with open(path, "rb") as stream:
            summary = wxr.import_wxr(stream, progress=seen.append)
        db.session.commit()
        assert summary.posts_created == 20
        assert summary.comments_created == {Status.APPROVED: 1780, Status.PENDING: 220}
        assert sum(seen) == path.stat().st_size
        assert db.session.scalar(select(func.max(Comment.depth))) == 2
        assert db.session.scalar(select(func.count()).where(Comment.visible.is_(True))) == 1780


def read_all(path: Path) -> tuple[int, int, int]:
    """Items read, bytes read when the first event came, and peak memory while reading."""
    with open(path, "rb") as stream:
        tracemalloc.start()
        try:
            events = wxr.WXRReader().read(stream)
            kind, _ = next(events)
            read_at_first_event = stream.tell()
            items = sum(1 for kind, _ in events if kind == "item")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return items, read_at_first_event, peak


def test_the_reader_streams_items_without_holding_the_file(tmp_path):
    small, big = tmp_path / "small.xml", tmp_path / "big.xml"
    big_export(small, posts=25, per_post=20)
    big_export(big, posts=200, per_post=20)
    assert big.stat().st_size > 3_000_000
    small_items, _, small_peak = read_all(small)
    big_items, read_at_first_event, big_peak = read_all(big)
    assert (small_items, big_items) == (25, 200)
    # Events come as the file is read, and memory does not grow with the file.
    assert read_at_first_event <= wxr.CHUNK_BYTES
    assert big_peak < 1.5 * small_peak
    assert big_peak < 4 * 1024 * 1024  # about 20 chunks' worth, whatever the file's size


def test_replies_to_a_pingback_are_shown_under_it(app, client):
    ping = comment_xml(2, kind="pingback", author="Linking Blog", date="2023-05-01 12:00:00")
    replies = comment_xml(3, parent=2, content="Thanks for the link") + comment_xml(
        4, parent=3, content="Reply to the reply"
    )
    run_import(app, wxr_document(item_xml(1, comment_xml(1) + ping + replies)))
    with app.app_context():
        ids = dict(db.session.execute(select(Comment.wp_id, Comment.id)).all())
        post = db.session.scalars(select(Post)).one()
        url = f"/posts/{post.id}/{post.slug}"
    page = client.get(url).get_data(as_text=True)
    assert "4 Responses" in page
    pingbacks = page[page.index('class="pingbacks"') :]
    anchors = re.findall(r'id="(comment-\d+)"', pingbacks)
    assert anchors == [f"comment-{ids[2]}", f"comment-{ids[3]}", f"comment-{ids[4]}"]
    assert "Thanks for the link" in pingbacks and "Reply to the reply" in pingbacks
    resp = client.get(f"/comments/{ids[4]}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"#comment-{ids[4]}")


def test_titles_tags_slugs_and_bylines_keep_their_text(app, client):
    tag = "Caf" + "e\u0301 " * 40  # 80 characters with combining accents, none cut
    figure = (
        '<figure class="wp-caption"><img src="https://img.example/fish.jpg" alt="Fish">'
        "<figcaption>Fresh</figcaption></figure>"
        '<img src="http://img.example/insecure.jpg">'
    )
    item = (
        item_xml(
            1,
            comment_xml(1, kind="pingback", author="P" * 200),
            title="<![CDATA[<em>Fish</em> &amp; Chips]]>",
            post_name="fish-%c3%a9-chips",
        )
        .replace("Body of 1.", figure)
        .replace(
            "<wp:post_id>",
            f'<category domain="post_tag"><![CDATA[{tag}]]></category>'
            '<category domain="category"><![CDATA[<b>News</b> &amp; more]]></category><wp:post_id>',
        )
    )
    summary = run_import(app, wxr_document(item, display_name="Edith Editor"))
    assert summary.warnings == []
    with app.app_context():
        post = db.session.scalars(select(Post)).one()
        assert post.title == "Fish & Chips" and post.slug == "fish-é-chips"
        assert sorted(t.name for t in post.tags) == sorted([tag.strip(), "News & more"])
        assert db.session.scalars(select(Comment.author_name)).one() == "P" * 200
        url = f"/posts/{post.id}/{post.slug}"
    resp = client.get(url)
    page = resp.get_data(as_text=True)
    assert "by Edith Editor" in page and "<h1>Fish &amp; Chips</h1>" in page
    assert (
        '<figure><img src="https://img.example/fish.jpg" alt="Fish" loading="lazy" '
        'decoding="async"><figcaption>Fresh</figcaption></figure>'
    ) in page
    assert "insecure.jpg" not in page
    assert "img-src 'self' data: https:;" in resp.headers["Content-Security-Policy"]


def test_a_title_longer_than_the_column_skips_the_post_with_a_warning(app):
    summary = run_import(app, wxr_document(item_xml(1, comment_xml(1), title="T" * 501)))
    assert summary.posts_created == 0 and summary.skipped == {"posts with a title too long": 1}
    assert summary.comments_skipped == {"on posts with a title too long": 1}
    assert "post 1: title over 500 characters" in summary.warnings[0]


def test_update_reapplies_statuses_and_edits_from_a_newer_export(app):
    first = wxr_document(item_xml(7, comment_xml(1) + comment_xml(2, parent=1)))
    newer = wxr_document(
        item_xml(
            7,
            comment_xml(1, status="spam")
            + comment_xml(2, parent=1, content="Edited on the blog.")
            + comment_xml(3),
            title="A better title",
        )
    )
    run_import(app, first)
    plain = run_import(app, newer)  # without --update only what is new comes in
    assert plain.comments_created == {Status.APPROVED: 1} and plain.changes == []
    with app.app_context():
        assert db.session.scalar(select(Comment.status).where(Comment.wp_id == 1)) is (
            Status.APPROVED
        )
    path = Path(app.instance_path) / "newer.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(newer, encoding="utf-8")
    result = import_file(app, path, "--update")
    assert result.exit_code == 0, result.output
    assert "Changed: post 7: title changed" in result.output
    assert "Changed: comment 1: approved -> spam" in result.output
    assert "Changed: comment 2: text edited" in result.output
    assert "Posts: 0 imported, 1 already present (1 updated)." in result.output
    assert "3 already present (2 updated)" in result.output
    with app.app_context():
        rows = {c.wp_id: c for c in db.session.scalars(select(Comment))}
        assert rows[1].status is Status.SPAM and not rows[1].visible
        assert not rows[2].visible and rows[2].body_html == "<p>Edited on the blog.</p>"
        assert rows[2].edited_at is not None and rows[3].visible
        assert db.session.scalar(select(Post.title)) == "A better title"
        logged = db.session.scalars(select(ModerationAction.action)).all()
        assert logged == ["import", "import"]
    with count_queries(app) as statements:
        again = import_file(app, path, "--update")
    assert again.exit_code == 0 and "Changed:" not in again.output
    assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]


@pytest.mark.parametrize("app_config", [{"COMMENT_THREADS_PER_PAGE": 1}])
def test_replies_to_a_pingback_are_on_the_last_page_with_it(app, client):
    ping = comment_xml(3, kind="trackback", author="Tracker", date="2023-05-01 09:00:00")
    comments = comment_xml(1) + comment_xml(2) + ping + comment_xml(4, parent=3)
    run_import(app, wxr_document(item_xml(1, comments)))
    with app.app_context():
        ids = dict(db.session.execute(select(Comment.wp_id, Comment.id)).all())
        post = db.session.scalars(select(Post)).one()
        last = f"/posts/{post.id}/{post.slug}?page=2"
    resp = client.get(f"/comments/{ids[4]}")
    assert resp.headers["Location"] == f"{last}#comment-{ids[4]}"
    page = client.get(last).get_data(as_text=True)
    assert f'id="comment-{ids[4]}"' in page and f'id="comment-{ids[3]}"' in page
    first = client.get(f"/posts/{post.id}/{post.slug}").get_data(as_text=True)
    assert f'id="comment-{ids[4]}"' not in first
