"""Real WordPress exports from public projects' test suites, each checked against an
independent reading of the file (ElementTree, not the importer's expat reader).

The files live outside the project (../shared/data/wxr-real/, sources and licences in its
README; FORUM_WXR_REAL names another folder) and are read from there, never copied in.
CI has the folder: there a missing folder fails instead of testing nothing.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import select

from forum.extensions import db
from forum.models import Comment, Post, Status
from forum.tools import wxr

REAL = Path(
    os.environ.get("FORUM_WXR_REAL")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wxr-real"
)
FILES = sorted(REAL.glob("*.xml")) if REAL.is_dir() else []
WP = ("http://wordpress.org/export/", "https://wordpress.org/export/")
STATUS = {"1": Status.APPROVED, "0": Status.PENDING, "spam": Status.SPAM, "trash": Status.REJECTED}
KEPT_TYPES = {"", "comment", "pingback", "trackback"}
ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass
class SourceComment:
    parent: int | None
    status: Status
    ping: bool


@dataclass
class SourcePost:
    title: str
    post_name: str
    comments: dict[int, SourceComment] = field(default_factory=dict)

    def depth(self, wp_id: int) -> int:
        parent = self.comments[wp_id].parent
        return 0 if parent is None else self.depth(parent) + 1

    def visible(self) -> set[int]:
        shown: dict[int, bool] = {}

        def is_shown(wp_id: int, seen: tuple[int, ...] = ()) -> bool:
            if wp_id not in shown:
                assert wp_id not in seen, f"reply loop at {wp_id}"
                c = self.comments[wp_id]
                above = c.parent is None or is_shown(c.parent, (*seen, wp_id))
                shown[wp_id] = above and c.status is Status.APPROVED
            return shown[wp_id]

        return {wp_id for wp_id in self.comments if is_shown(wp_id)}


@dataclass
class Source:
    posts: dict[int, SourcePost]
    comments_in_file: int


def local(tag: str) -> tuple[bool, str]:
    """(in the WordPress namespace, local name) of an ElementTree tag."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace.startswith(WP) and "/excerpt" not in namespace, name
    return False, tag


def wp_children(element: ET.Element) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for child in element:
        is_wp, name = local(child.tag)
        if is_wp:
            found.setdefault(name, child)
    return found


def text(children: dict[str, ET.Element], name: str) -> str:
    child = children.get(name)
    return (child.text or "").strip() if child is not None else ""


def is_id(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63


def is_date(raw: str) -> bool:
    try:
        datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return raw != "0000-00-00 00:00:00"


def read_source(path: Path) -> Source | None:
    """What the file holds by WordPress's rules, or None when it is no WXR file at all."""
    if b"<!DOCTYPE" in path.read_bytes():
        return None
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - known test data, no DTD (checked above)
    except ET.ParseError:
        return None
    if root.tag != "rss" or [child.tag for child in root] != ["channel"]:
        return None
    channel = root[0]
    version = text(wp_children(channel), "wxr_version")
    if version and not (re.fullmatch(r"\d+\.\d+", version) and version.startswith("1.")):
        return None
    if not version and not any(local(e.tag)[0] for e in root.iter()):
        return None
    posts: dict[int, SourcePost] = {}
    in_file = 0
    for item in channel.iter("item"):
        fields = wp_children(item)
        comments = [c for c in item if local(c.tag) == (True, "comment")]
        in_file += len(comments)
        if not fields:
            continue
        if (text(fields, "post_type") or "post") != "post":
            continue
        if (text(fields, "status") or "publish") != "publish" or text(fields, "post_password"):
            continue
        raw_id = text(fields, "post_id")
        if not is_id(raw_id):
            links = [item.findtext("guid") or "", item.findtext("link") or ""]
            ids = [parse_qs(urlsplit(link.strip()).query).get("p", []) for link in links]
            raw_id = next((i[0] for i in ids if len(i) == 1 and is_id(i[0])), "")
            if not raw_id:
                continue
        if int(raw_id) in posts:
            continue
        post = posts[int(raw_id)] = SourcePost(
            item.findtext("title") or "", text(fields, "post_name")
        )
        parents: dict[int, int] = {}
        for c in comments:
            cf = wp_children(c)
            raw_cid = text(cf, "comment_id")
            if text(cf, "comment_type") not in KEPT_TYPES or not is_id(raw_cid):
                continue
            if not (is_date(text(cf, "comment_date_gmt")) or is_date(text(cf, "comment_date"))):
                continue
            cid = int(raw_cid)
            if cid in post.comments:
                continue
            post.comments[cid] = SourceComment(
                None,
                STATUS.get(text(cf, "comment_approved"), Status.PENDING),
                text(cf, "comment_type") in ("pingback", "trackback"),
            )
            raw_parent = text(cf, "comment_parent")
            if is_id(raw_parent):
                parents[cid] = int(raw_parent)
        for cid, parent in parents.items():
            # A parent outside the post (or skipped): WordPress shows the reply at the top.
            post.comments[cid].parent = parent if parent in post.comments else None
    return Source(posts, in_file)


def shown_on_pages(client, post: Post) -> list[int]:
    """Comment ids anchored on every page of the post, in page order."""
    ids: list[int] = []
    page = 1
    while True:
        url = f"/posts/{post.id}/{post.slug}" + (f"?page={page}" if page > 1 else "")
        resp = client.get(url)
        if resp.status_code == 404 and page > 1:
            return ids
        assert resp.status_code == 200, (url, resp.status_code)
        ids += [int(i) for i in re.findall(r'id="comment-(\d+)"', resp.get_data(as_text=True))]
        page += 1


def in_feed(client, post: Post) -> list[int]:
    feed = ET.fromstring(client.get(f"/posts/{post.id}/feed.atom").data)  # noqa: S314 - ours
    return [int(e.findtext(f"{ATOM}id").rsplit("/", 1)[1]) for e in feed.iter(f"{ATOM}entry")]


def test_the_real_exports_folder_is_there_in_ci():
    if os.environ.get("CI"):
        assert FILES, f"no real exports in {REAL}: CI must have them"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_real_export_imports_as_an_independent_reading_says(app, client, path):
    source = read_source(path)
    with app.app_context():
        if source is None:
            with pytest.raises(wxr.WXRError), open(path, "rb") as stream:
                wxr.import_wxr(stream)
            return
        with open(path, "rb") as stream:
            summary = wxr.import_wxr(stream)
        db.session.commit()
        kept = sum(len(p.comments) for p in source.posts.values())
        assert summary.comments_in_file == source.comments_in_file
        assert summary.comments_created.total() == kept
        assert summary.comments_skipped.total() == source.comments_in_file - kept
        assert summary.comments_present == 0
        posts = {p.wp_id: p for p in db.session.scalars(select(Post))}
        assert set(posts) == set(source.posts)
        for wp_id, post in posts.items():
            expected = source.posts[wp_id]
            assert not re.search(r"<[a-zA-Z/]|&[a-z]+;|&#\d+;", post.title), post.title
            name = unquote(expected.post_name)
            if re.fullmatch(r"[\w-]+", name) and len(name) <= 200:
                assert post.slug == name
            comments = {
                c.wp_id: c
                for c in db.session.scalars(select(Comment).where(Comment.post_id == post.id))
            }
            assert set(comments) == set(expected.comments), wp_id
            by_id = {c.id: c.wp_id for c in comments.values()}
            for cid, c in expected.comments.items():
                got = comments[cid]
                assert got.status is c.status, cid
                assert (by_id[got.parent_id] if got.parent_id else None) == c.parent, cid
                assert got.depth == expected.depth(cid), cid  # the 10-level threads too
            visible = expected.visible()
            assert {c.wp_id for c in comments.values() if c.visible} == visible
            shown = shown_on_pages(client, post)
            assert sorted(by_id[i] for i in shown) == sorted(visible), wp_id
            fed = [by_id[i] for i in in_feed(client, post)]
            talk = {cid for cid in visible if not expected.comments[cid].ping}
            assert set(fed) <= talk and len(fed) == min(len(talk), 30)
        # Importing the same file again finds everything and writes nothing.
        with open(path, "rb") as stream:
            again = wxr.import_wxr(stream)
        assert again.comments_created.total() == 0 and again.comments_present == kept
        assert again.posts_created == 0 and again.posts_present == len(source.posts)
