"""Importing Disqus exports with `forum import-disqus`."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import Comment, HoldReason, Post, Status
from forum.tools import disqus
from tests.helpers import count_queries
from tests.test_wxr import BLOG

EXPORT = Path(__file__).parent / "data" / "disqus" / "small-export.xml"
KEY = "disqus:hedgerow:post:"


def run_cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["forum", *args])


def imported() -> dict[int, Comment]:
    rows = db.session.scalars(select(Comment).where(Comment.import_key.startswith(KEY)))
    return {int(c.import_key.removeprefix(KEY)): c for c in rows}


def test_a_disqus_export_imports_threads_nesting_and_authors(app, client):
    assert run_cli(app, "import-wxr", str(BLOG)).exit_code == 0
    result = run_cli(app, "import-disqus", str(EXPORT))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Threads: 1 matched to posts here, 2 posts created for the others." in out
    assert "Comments: 10 imported (8 approved, 1 spam, 1 rejected), 1 of them deleted but" in out
    assert "0 already present; 0 skipped; 10 in the file." in out
    assert "Warning: line 61: thread: no dsq:id" in out
    assert "post 9013: its parent 8888 is not in the file: imported at the top level" in out
    assert "2 comment(s) named no thread the file declares: imported under one post" in out
    with app.app_context():
        c = imported()
        by_id = {v.id: k for k, v in c.items()}
        parents = {k: by_id.get(v.parent_id) for k, v in c.items()}
        assert parents == {
            9001: None,
            9003: 9001,
            9004: 9003,
            9005: 9001,
            9010: None,
            9011: 9010,
            9012: None,
            9013: None,
            9020: None,
            9021: 9020,
        }
        assert c[9004].depth == 2 and c[9004].path.startswith(c[9003].path + "/")
        # The sourdough thread joined the WordPress post it was on.
        sourdough = db.session.scalars(
            select(Post).where(Post.import_key == "wxr:hedgerow.example:post:101")
        ).one()
        assert {c[k].post_id for k in (9001, 9003, 9004, 9005)} == {sourdough.id}
        gin = c[9010].post
        assert gin.title == "Damson gin & other hedgerow liqueurs" and not gin.comments_open
        assert gin.legacy_path == "/2023/11/damson-gin"
        assert c[9020].post.title == disqus.NO_THREAD_TITLE == c[9021].post.title
        assert db.session.scalar(select(func.count()).select_from(Post)) == 4  # 2 + 2 made
        # Deleted with a reply: an empty placeholder; without: out of view, like spam.
        assert (c[9010].status, c[9010].visible, c[9010].body_source) == (Status.APPROVED, True, "")
        assert c[9010].author_name == "Deleted" and c[9011].visible
        assert (c[9012].status, c[9012].visible) == (Status.REJECTED, False)
        assert (c[9005].status, c[9005].visible) == (Status.SPAM, False)
        assert [r.detail for r in c[9005].reasons] == ["Disqus: spam (spam)"]
        assert db.session.scalar(select(func.count()).select_from(HoldReason)) >= 2
        assert c[9003].author_email == "pip@example.org" and c[9003].ip == "203.0.113.7"
        assert c[9013].ip == "2001:db8::13" and c[9021].author_name == "Zoë"
        assert "<script" not in c[9004].body_html and "Mine too." in c[9004].body_html
        gin_url = f"/posts/{gin.id}/{gin.slug}"
    page = client.get(gin_url).get_data(as_text=True)
    assert "This comment was deleted." in page and "damsons after the first frost" in page
    assert "Something I regret" not in page and "Never mind." not in page
    feed = client.get(f"/posts/{gin.id}/feed.atom").get_data(as_text=True)
    assert "damsons after the first frost" in feed and feed.count("<entry>") == 2


def test_importing_the_same_disqus_file_again_changes_nothing(app):
    assert run_cli(app, "import-disqus", str(EXPORT)).exit_code == 0
    with count_queries(app) as statements:
        result = run_cli(app, "import-disqus", str(EXPORT))
    assert result.exit_code == 0, result.output
    assert "Comments: 0 imported (none)" in result.output
    assert "10 already present; 0 skipped; 10 in the file." in result.output
    assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]


def test_a_disqus_dry_run_writes_nothing(app):
    result = run_cli(app, "import-disqus", str(EXPORT), "--dry-run")
    assert result.exit_code == 0 and "Dry run: nothing was written." in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Comment)) == 0
        assert db.session.scalar(select(func.count()).select_from(Post)) == 0


def test_replies_before_their_parents_and_loops_are_placed(app):
    def post(dsq_id: int, parent: int | None = None, day: int = 1) -> str:
        ref = f'<parent dsq:id="{parent}"/>' if parent else ""
        return (
            f'<post dsq:id="{dsq_id}"><message>m{dsq_id}</message>'
            f"<createdAt>2024-01-0{day}T10:00:00Z</createdAt><isDeleted>false</isDeleted>"
            f"<isSpam>false</isSpam><author><name>N{dsq_id}</name></author>"
            f'<thread dsq:id="1"/>{ref}</post>'
        )

    text = (
        '<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">'
        '<thread dsq:id="1"><forum>f</forum><link>https://x.example/a/</link><title>A</title>'
        "</thread>"
        + post(3, parent=2)
        + post(2, parent=1)
        + post(1)
        + post(4, parent=5)
        + post(5, parent=4, day=2)
        + post(6)
        + post(6)
        + "</disqus>"
    )
    with app.app_context():
        summary = disqus.import_disqus(io.BytesIO(text.encode()))
        rows = dict(db.session.execute(select(Comment.import_key, Comment.depth)).all())
    assert {k.rsplit(":", 1)[1]: v for k, v in rows.items()} == {
        "1": 0,
        "2": 1,
        "3": 2,
        "4": 0,  # the loop is broken at the comment listed first
        "5": 1,
        "6": 0,
    }
    assert summary.comments_skipped == {"duplicates": 1}
    assert summary.comments_in_file == 7


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '<!DOCTYPE disqus [<!ENTITY x "y">]><disqus xmlns="http://disqus.com"/>',
            "a DTD or entity declaration",
        ),
        ('<rss version="2.0"><channel/></rss>', "the root is <rss>, not <disqus>"),
        ('<disqus xmlns="http://disqus.com"><post>', "malformed XML"),
    ],
)
def test_hostile_and_malformed_disqus_files_are_refused(app, tmp_path, text, problem):
    path = tmp_path / "export.xml"
    path.write_text(text, encoding="utf-8")
    result = run_cli(app, "import-disqus", str(path))
    assert result.exit_code == 1
    assert problem in result.output and "Nothing was imported." in result.output


def big_disqus(path: Path, comments: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(
            '<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">'
        )
        out.write('<thread dsq:id="1"><link>https://x.example/a/</link><title>A</title></thread>')
        for n in range(1, comments + 1):
            out.write(
                f'<post dsq:id="{n}"><message><![CDATA[<p>{"words " * 40}</p>]]></message>'
                "<createdAt>2024-01-01T10:00:00Z</createdAt><author><name>N</name></author>"
                '<thread dsq:id="1"/></post>\n'
            )
        out.write("</disqus>")


def peak_reading(path: Path) -> tuple[int, int, int]:
    with open(path, "rb") as stream:
        tracemalloc.start()
        try:
            elements = disqus.DisqusReader().read(stream)
            next(elements)
            read_at_first = stream.tell()
            count = 1 + sum(1 for _ in elements)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return count, read_at_first, peak


def test_the_disqus_reader_streams_without_holding_the_file(tmp_path):
    small, big = tmp_path / "small.xml", tmp_path / "big.xml"
    big_disqus(small, 1_000)
    big_disqus(big, 10_000)
    assert big.stat().st_size > 3_000_000
    small_count, _, small_peak = peak_reading(small)
    big_count, read_at_first, big_peak = peak_reading(big)
    assert (small_count, big_count) == (1_001, 10_001)
    assert read_at_first <= disqus.CHUNK_BYTES
    assert big_peak < 1.5 * small_peak
