"""Nothing a stranger sends crashes a page or steers a link, walked over the whole app.

The walks discover what they cover: every URL rule with an integer in it, every query
argument the code reads, and every form the pages render (found by reading the pages as
each role sees them). A route, argument or form added later is covered the day it lands.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from flask_wtf import FlaskForm
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from forum.extensions import db, mail
from forum.forms import Form
from forum.ids import MAX_ID, parse_id
from forum.models import Comment, Post, Role, Status, User
from forum.services.sanitize import is_blank
from tests.factories import make_comment, make_post, make_user
from tests.helpers import (
    HOSTILE_IDS,
    build_world,
    hostile_id_paths,
    int_arguments,
    login_as,
    make_test_app,
    methods,
    truncate_all,
    walked_rules,
    world_path,
)

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("anonymous", "member", "moderator", "admin")
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u202e \u00a0\u3164"


def client_as(app, world: dict, role: str):
    client = app.test_client()
    if role != "anonymous":
        login_as(client, world["users"][role])
    return client


def rebuild_world(app) -> dict:
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            truncate_all()
        return build_world(app)


# Integers in paths --------------------------------------------------------------------


def id_rules(app) -> list:
    return [rule for rule in walked_rules(app) if int_arguments(rule)]


def test_the_walk_finds_the_routes_with_ids(app):
    endpoints = {rule.endpoint for rule in id_rules(app)}
    assert {"posts.show", "comments.permalink", "feeds.post_comments"} <= endpoints
    assert {"moderation.act", "auth.users.ban", "comments.flag"} <= endpoints
    assert len(id_rules(app)) >= 15


def test_every_integer_in_a_path_is_range_checked(app):
    """0, -1, 2**31-1, 2**31, 2**63-1, 2**63, 10**20, 400 digits and an Arabic-Indic one:
    a 404 for every rule with an integer, every method it allows, as a guest, a member and
    a moderator (2**31-1, the largest id, is in range: whatever answers, never a 5xx)."""
    world = rebuild_world(app)
    checked = 0
    for rule in id_rules(app):
        for name, raw, path in hostile_id_paths(rule):
            for method in methods(rule):
                for role in ("anonymous", "member", "moderator"):
                    resp = client_as(app, world, role).open(path, method=method)
                    expected = 404
                    if raw == str(MAX_ID):  # in range: the object just does not exist
                        expected = resp.status_code if resp.status_code < 500 else 404
                    assert resp.status_code == expected, (method, path, role, name)
                    checked += 1
    assert checked > 300


# Integers in query strings --------------------------------------------------------------

_QUERY_READ = re.compile(r"""(?:id_arg|page_arg|request\.args\.get)\(\s*["'](\w+)["']""")


def query_arguments() -> set[str]:
    """Every query argument the code reads, found in the source."""
    names: set[str] = set()
    for path in (ROOT / "forum").rglob("*.py"):
        source = path.read_text()
        names.update(_QUERY_READ.findall(source))
        if "page_arg()" in source:
            names.add("page")
    return names


def test_the_walk_finds_the_query_arguments():
    assert {"page", "reply_to", "post", "per_page", "comment", "before"} <= query_arguments()


def test_no_query_argument_crashes_any_page(app):
    """Every GET route with every argument the code reads set to each hostile number."""
    world = rebuild_world(app)
    names = sorted(query_arguments())
    for rule in walked_rules(app):
        if "GET" not in methods(rule):
            continue
        path = world_path(rule, world)
        for role in ("anonymous", "moderator"):
            client = client_as(app, world, role)
            for raw in HOSTILE_IDS:
                resp = client.get(path, query_string={name: raw for name in names})
                assert resp.status_code < 500, (path, role, raw)
            for name in names:
                resp = client.get(path, query_string={name: str(2**64)})
                assert resp.status_code < 500, (path, role, name)


# Every form ------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """The POST forms of a page: action and fields with the values the page put in."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._form = {"action": a.get("action", ""), "fields": {}, "submit": None, "also": []}
            self.forms.append(self._form)
        if self._form is None:
            return
        fields = self._form["fields"]
        if tag == "option" and self._select and ("selected" in a or self._select not in fields):
            fields[self._select] = a.get("value", "")
        if "name" not in a or "form" in a:
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a or (kind == "radio" and name not in fields):
                    fields[name] = a.get("value", "y")
            elif kind == "submit":
                self._form["submit"] = self._form["submit"] or (name, a.get("value", ""))
            else:
                fields[name] = a.get("value") or _plausible(name, kind)
        elif tag == "button" and a.get("type", "submit") == "submit" and "formaction" in a:
            # A second button sending the same fields elsewhere (Preview): its own form.
            self._form["also"].append((a["formaction"], (name, a.get("value", ""))))
        elif tag == "button" and a.get("type", "submit") == "submit":
            self._form["submit"] = self._form["submit"] or (name, a.get("value", ""))
        elif tag == "textarea":
            self._textarea = name
            fields[name] = ""
        elif tag == "select":
            self._select = name

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea" and self._form is not None and self._textarea:
            if not self._form["fields"][self._textarea]:
                self._form["fields"][self._textarea] = "Walked text, typed by a person."
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self._form is not None:
            self._form["fields"][self._textarea] += data


def _plausible(name: str, kind: str) -> str:
    if kind == "email" or "email" in name:
        return "walker@example.org"
    if kind == "url" or name.endswith("url"):
        return "https://example.org/"
    if kind == "password" or "password" in name or name == "confirm":
        return "a long and walked pass phrase"
    if kind == "hidden":
        return ""
    return "Walked text"


def forms_of_the_app(app, world: dict) -> list[tuple[str, str, dict]]:
    """(role, action path, form) for every distinct POST form any GET page renders, with
    the first role (least privileged first) that is shown it."""
    found: dict[tuple, tuple[str, str, dict]] = {}
    for rule in walked_rules(app):
        if "GET" not in methods(rule):
            continue
        page = world_path(rule, world)
        for role in ROLES:
            resp = client_as(app, world, role).get(page, query_string={"reply_to": "1"})
            if resp.mimetype != "text/html":
                continue
            parser = _Forms()
            parser.feed(resp.get_data(as_text=True))
            alternates = [
                {**form, "action": action, "submit": submit, "also": []}
                for form in parser.forms
                for action, submit in form["also"]
            ]
            for form in parser.forms + alternates:
                # An action that is only a #fragment posts to the page itself.
                action = urlsplit(urljoin(page, form["action"]))
                if action.netloc:
                    continue
                key = (re.sub(r"/\d+", "/N", action.path), tuple(sorted(form["fields"])))
                target = action.path + (f"?{action.query}" if action.query else "")
                found.setdefault(key, (role, target, form))
    return list(found.values())


VARIANTS = ("huge", "file", "repeated", "missing", "invisible", "mebibyte")


def _send(app, world, role, action, form, field, variant):
    data: dict = {k: v for k, v in form["fields"].items() if k != "csrf_token"}
    if form["submit"]:
        data.setdefault(*form["submit"])
    if variant == "huge":
        data[field] = str(10**20)
    elif variant == "file":
        data[field] = (io.BytesIO(b"%PDF-1.4 not text"), "invoice.pdf")
    elif variant == "repeated":
        data[field] = [data.get(field, "x") or "x", "second"]
    elif variant == "missing":
        data.pop(field, None)
    elif variant == "invisible":
        data[field] = INVISIBLE
    elif variant == "mebibyte":
        data[field] = "x" * 2**20
    client = client_as(app, world, role)
    return client.post(action, data=data, content_type=None)


def test_every_field_of_every_form_survives_hostile_values(app):
    """Each field of each form, as the role that sees it: a huge integer, a file part,
    sent twice, left out, invisible text and 1 MiB. No 5xx; a file or a repeat is refused;
    nothing blank to a reader is stored."""
    world = rebuild_world(app)
    forms = forms_of_the_app(app, world)
    actions = {re.sub(r"/\d+", "/N", urlsplit(a).path) for _, a, _ in forms}
    assert {"/posts/N/comments", "/auth/login", "/auth/register", "/moderation/bulk"} <= actions
    assert {"/posts/N/comments/preview", "/comments/N/edit", "/posts/new"} <= actions
    assert len(forms) >= 20
    for role, action, form in forms:
        world = rebuild_world(app)
        for field in [f for f in form["fields"] if f != "csrf_token"] or [None]:
            for variant in VARIANTS if field else ("missing",):
                resp = _send(app, world, role, action, form, field, variant)
                where = (role, action, field, variant, resp.status_code)
                assert resp.status_code < 500, where
                if variant == "file":
                    assert resp.status_code == 400, where
                if variant == "mebibyte":
                    assert resp.status_code == 413, where
            assert_nothing_blank_stored(app)


def assert_nothing_blank_stored(app) -> None:
    with app.app_context():
        for comment in db.session.scalars(select(Comment)):
            assert not is_blank(comment.author_name), comment.id
            assert comment.body_html and not is_blank(re.sub("<[^>]+>", "", comment.body_html))
        for post in db.session.scalars(select(Post)):
            assert not is_blank(post.title), post.id
        for user in db.session.scalars(select(User)):
            assert not is_blank(user.username), user.id


def test_every_form_inherits_the_checks_of_the_base_form(app):
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = [c for c in subclasses(FlaskForm) if c.__module__.startswith("forum.")]
    assert len(ours) >= 15
    assert [c.__name__ for c in ours if not issubclass(c, Form)] == []


# The comment form, by hand -------------------------------------------------------------


@pytest.fixture
def post_id(app) -> int:
    with app.app_context():
        post = make_post(make_user(Role.ADMIN))
        db.session.commit()
        return post.id


GUEST = {"author_name": "Ann", "author_email": "ann@example.org"}


def stored_comments(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Comment)).all())


@pytest.mark.parametrize(
    "body",
    ["\u200b", "\u200b\u200d\u2060\ufeff", " \u00a0\u3000\t\n", "\u202e\u202c", "<b></b>",
     "<p>&nbsp;</p>", "&#8203;", "<script>x</script>", "\u2800", "\u3164"],
)  # fmt: skip
def test_a_comment_nobody_could_see_is_refused_like_an_empty_one(app, client, post_id, body):
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "body": body})
    assert resp.status_code == 422
    assert stored_comments(app) == 0


@pytest.mark.parametrize("name", ["\u200b", "\u2060\ufeff", "\u3164", "\u00a0"])
def test_an_invisible_guest_name_is_refused(app, client, post_id, name):
    resp = client.post(
        f"/posts/{post_id}/comments", data={**GUEST, "author_name": name, "body": "Hello"}
    )
    assert resp.status_code == 422
    assert stored_comments(app) == 0


@pytest.mark.parametrize("parent_id", [str(2**63), str(10**20), "-1", "\u0661", "\u00b2", "1e3"])
def test_an_impossible_parent_id_is_a_form_error(app, client, post_id, parent_id):
    resp = client.post(
        f"/posts/{post_id}/comments", data={**GUEST, "body": "Hello", "parent_id": parent_id}
    )
    assert resp.status_code == 422
    assert "That is not a comment you can reply to." in resp.get_data(as_text=True)
    assert stored_comments(app) == 0


def test_a_file_where_the_body_goes_is_refused(app, client, post_id):
    resp = client.post(
        f"/posts/{post_id}/comments",
        data={**GUEST, "body": (io.BytesIO(b"hello"), "body.txt")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 400
    assert "text only" in resp.get_data(as_text=True)
    assert stored_comments(app) == 0


def test_a_body_sent_twice_is_a_form_error(app, client, post_id):
    resp = client.post(
        f"/posts/{post_id}/comments",
        data=MultiDict([*GUEST.items(), ("body", "first"), ("body", "second")]),
    )
    assert resp.status_code == 422
    assert "sent more than once" in resp.get_data(as_text=True)
    assert stored_comments(app) == 0


def test_an_invisible_post_title_is_refused(app, client):
    with app.app_context():
        admin = make_user(Role.ADMIN)
        db.session.commit()
        admin_id = admin.id
    login_as(client, admin_id)
    for title, body in [("\u200b\u2060", "A body"), ("A title", "<b></b>\u200b")]:
        resp = client.post("/posts/new", data={"title": title, "body": body})
        assert resp.status_code == 422
    with app.app_context():
        assert db.session.scalars(select(Post)).all() == []


def test_a_username_of_invisible_characters_is_refused(app, client):
    resp = client.post(
        "/auth/register",
        data={
            "username": "\u200b\u200b\u200b\u200b",
            "email": "z@example.org",
            "password": "a long and good pass phrase",
            "confirm": "a long and good pass phrase",
        },
    )
    assert resp.status_code in (400, 422)
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []


# The Host header ------------------------------------------------------------------------

BASE = "https://forum.example.org"
# A Host the app accepts (as behind a proxy passing any Host): links still use BASE_URL.
ANY_HOST = {"BASE_URL": BASE, "TRUSTED_HOSTS": ["forum.example.org", "evil.example"]}


@pytest.mark.parametrize("app_config", [ANY_HOST])
def test_reset_mail_links_to_the_base_url_whatever_the_host(app, client):
    with app.app_context():
        make_user(username="alice", email="alice@example.org")
        db.session.commit()
    with mail.record_messages() as outbox:
        resp = client.post(
            "/auth/reset",
            data={"email": "alice@example.org"},
            headers={"Host": "evil.example"},
        )
        resp.close()
    assert resp.status_code == 302
    assert len(outbox) == 1
    assert f"{BASE}/auth/reset/" in outbox[0].body
    assert "evil.example" not in outbox[0].body


@pytest.mark.parametrize("app_config", [{**ANY_HOST, "MAIL_FLUSH_AFTER_RESPONSE": True}])
def test_digest_links_to_the_base_url_whatever_the_host(app, client, post_id):
    with app.app_context():
        make_user(Role.MODERATOR, email="mod@example.org")
        db.session.commit()
    with mail.record_messages() as outbox:
        resp = client.post(
            f"/posts/{post_id}/comments",
            data={**GUEST, "body": "Held for a first-time author"},
            headers={"Host": "evil.example"},
        )
        resp.close()  # the outbox is flushed once the response is closed
    assert resp.status_code == 302
    digests = [m for m in outbox if "to moderate" in m.subject]
    assert digests, [m.subject for m in outbox]
    body = digests[0].body
    assert re.search(rf"{re.escape(BASE)}/moderation/l/\S+", body)
    assert f"{BASE}/moderation/" in body and "evil.example" not in body


@pytest.mark.parametrize("app_config", [ANY_HOST])
@pytest.mark.parametrize("feed", ["/feed.atom", "/comments/feed.atom", "/posts/{post}/feed.atom"])
def test_feeds_use_the_base_url_whatever_the_host(app, client, feed):
    with app.app_context():
        post = make_post(make_user(Role.ADMIN))
        make_comment(post, status=Status.APPROVED)
        db.session.commit()
        post_id = post.id
    text = client.get(feed.format(post=post_id), headers={"Host": "evil.example"}).get_data(
        as_text=True
    )
    urls = re.findall(r'(?:href="|<id>)(https?://[^"<]+)', text)
    assert urls and all(u.startswith(BASE + "/") for u in urls), urls
    assert "evil.example" not in text


@pytest.mark.parametrize("app_config", [ANY_HOST])
def test_the_canonical_link_uses_the_base_url_whatever_the_host(app, client, post_id):
    page = client.get(f"/posts/{post_id}", follow_redirects=True, headers={"Host": "evil.example"})
    canonical = re.search(r'<link rel="canonical" href="([^"]+)"', page.get_data(as_text=True))
    assert canonical and canonical.group(1).startswith(f"{BASE}/posts/{post_id}/")


@pytest.mark.parametrize("app_config", [{"BASE_URL": BASE}])
@pytest.mark.parametrize(
    "path", ["/", "/feed.atom", "/auth/login", "/moderation/", "/healthz", "/posts/1"]
)
def test_an_untrusted_host_gets_400_everywhere(client, path):
    assert client.get(path, headers={"Host": "evil.example"}).status_code == 400
    assert client.post(path, headers={"Host": "evil.example"}).status_code == 400
    assert client.get(path, headers={"Host": "forum.example.org"}).status_code < 500


def test_trusted_hosts_come_from_the_environment_as_a_list_or_words(monkeypatch, tmp_path):
    monkeypatch.setenv("FORUM_TRUSTED_HOSTS", "forum.example.org, .example.net")
    app = make_test_app(None, tmp_path, BASE_URL=BASE)
    assert app.config["TRUSTED_HOSTS"] == ["forum.example.org", ".example.net"]
    assert app.test_client().get("/healthz", headers={"Host": "a.example.net"}).status_code == 200
    assert app.test_client().get("/healthz", headers={"Host": "example.com"}).status_code == 400


@pytest.mark.parametrize(
    "bad", ["forum.example.org", "ftp://x.org", "https://", "https://x.org/?a"]
)
def test_a_base_url_that_is_not_an_address_stops_the_app(tmp_path, bad):
    with pytest.raises(ValueError, match="FORUM_BASE_URL"):
        make_test_app(None, tmp_path, BASE_URL=bad)


def test_no_link_is_built_from_the_request():
    """Absolute URLs come from BASE_URL through forum.links; nothing else may build one."""
    pattern = re.compile(
        r"(?<![A-Za-z])_external\s*=\s*True|request\.(host|url_root|host_url|root_url)\b"
    )
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("forum", "templates")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".html", ".txt") and pattern.search(path.read_text())
    ]
    assert offenders == []


# Properties -------------------------------------------------------------------------------

_INVISIBLE_CHARS = st.sampled_from(list(INVISIBLE + "\u2028\u2029\u200e\u200f\u061c\x85\t"))


@given(st.text(_INVISIBLE_CHARS))
def test_invisible_text_is_blank(text):
    assert is_blank(text)


@given(st.text(_INVISIBLE_CHARS), st.characters(categories=["L", "N", "P", "S"]), st.data())
def test_one_visible_character_makes_text_not_blank(text, visible, data):
    if visible in "\u115f\u1160\u3164\uffa0\u2800":
        return  # letters fonts draw as nothing
    cut = data.draw(st.integers(0, len(text)))
    assert not is_blank(text[:cut] + visible + text[cut:])


@given(st.integers(min_value=1, max_value=MAX_ID))
def test_every_id_in_range_parses_back(number):
    assert parse_id(str(number)) == number
    assert parse_id(f"00{number}") == number


@given(st.text(max_size=30))
def test_parse_id_returns_none_or_an_id_in_range(raw):
    value = parse_id(raw)
    if value is not None:
        assert 1 <= value <= MAX_ID
        assert raw.isascii() and raw.isdigit()


@given(st.integers(min_value=MAX_ID + 1))
def test_ids_past_the_column_range_never_parse(number):
    assert parse_id(str(number)) is None


# Conditional GET headers -------------------------------------------------------------------

JUNK_VALIDATORS = [
    "",
    "*",
    "garbage",
    '"',
    'W/"',
    'W/"unclosed',
    '"a", , W/"b",,,',
    ", ".join(f'W/"{n:032x}"' for n in range(5000)),
    "x" * 20_000,
    "\x00\x01\x7f",
    "é😀\u202e",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Mon, 01 Jan 0001 00:00:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
    "-1",
    "99999999999999999999999",
    "Sunday, 06-Nov-94 08:49:37 GMT",
]
CONDITIONAL_HEADERS = (
    "If-None-Match",
    "If-Modified-Since",
    "If-Match",
    "If-Unmodified-Since",
    "If-Range",
    "Range",
)


def test_no_conditional_header_crashes_any_page(app):
    """Every GET route, as a stranger and as a member, with each validator header set to
    each junk value (and all of them at once): an answer, never a 500, and never a 304
    that no validator of the page's own asked for."""
    world = rebuild_world(app)
    for rule in walked_rules(app):
        if "GET" not in methods(rule):
            continue
        path = world_path(rule, world)
        for role in ("anonymous", "member"):
            client = client_as(app, world, role)
            for value in JUNK_VALIDATORS:
                for headers in (
                    *({name: value} for name in CONDITIONAL_HEADERS),
                    dict.fromkeys(CONDITIONAL_HEADERS, value),
                ):
                    resp = client.get(path, headers=headers)
                    assert resp.status_code < 500, (path, role, headers.keys(), value[:40])
                    if resp.status_code == 304:
                        # Only "*" (any current page) or a date at or after the page's.
                        assert value == "*" or "GMT" in value, (path, role, value[:40])


@pytest.mark.parametrize("path", ["/", "/feed.atom", "/comments/feed.atom", "/posts/{post}"])
def test_junk_and_future_validators_never_keep_an_old_page(app, client, post_id, path):
    """A 304 needs the page's own ETag (or "*"), or a past date not before its change: a
    date still to come (a client's clock ahead) is no date, so it is answered 200."""
    path = path.format(post=post_id)
    first = client.get(path, follow_redirects=True)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    url = first.request.path
    for junk in ('W/"0000"', "garbage", 'W/"', ""):
        assert client.get(url, headers={"If-None-Match": junk}).status_code == 200
    many = ", ".join([*(f'W/"{n:032x}"' for n in range(2000)), etag])
    assert client.get(url, headers={"If-None-Match": many}).status_code == 304
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304
    future = "Fri, 31 Dec 9999 23:59:59 GMT"
    assert client.get(url, headers={"If-Modified-Since": future}).status_code == 200
