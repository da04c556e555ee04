"""The queue's rendered items (forum/moderation/fragments.py): the same HTML as the
item macro renders from the ORM, rendered again as soon as anything an item shows
changes, however it changed, and kept within their byte budget."""

from __future__ import annotations

import re

import pytest
from flask_wtf.csrf import generate_csrf
from jinja2 import StrictUndefined
from sqlalchemy import inspect, select, text, update

from forum.cache import MemoryCache
from forum.extensions import db
from forum.models import AuthorCounter, Comment, Flag, HoldReason, Post, Role, Status, User
from forum.moderation import fragments, query
from forum.services import queue as queue_service
from forum.services import sanitize
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries, item_html, login_as


@pytest.fixture
def ids(app):
    """A queue with one of every kind of item the tabs show."""
    with app.app_context():
        moderator = make_user(Role.MODERATOR, username="mod")
        member = make_user(username="Marta")
        banned = make_user(username="Bruno", is_banned=True)
        flagger = make_user(username="Fiona")
        post = make_post(moderator, title='A post "quoted" & <odd>')
        parent = make_comment(post, status=Status.PENDING, body="The **parent** text")
        made = {
            "guest": make_comment(
                post,
                status=Status.PENDING,
                body='Guest <a href="http://x.example">link</a><script>x()</script>',
                author_name="Gus <b>",
                author_email="gus@example.org",
                author_url="https://gus.example",
                ip="2001:db8::1",
                reasons=["links", "first comment"],
                sanitizer_report=["tag <script>"],
                spam_score=0.8125,
                spam_reasons=[["link count", 0.41], ["kind words", -0.2]],
            ),
            "reply": make_comment(
                post, parent=parent, status=Status.PENDING, body="A reply", user=member
            ),
            "banned": make_comment(post, status=Status.PENDING, user=banned, ip="203.0.113.7"),
            "approved": make_comment(post, status=Status.APPROVED, body="Flagged but approved"),
            "spam": make_comment(post, status=Status.SPAM, spam_score=0.99),
            "rejected": make_comment(post, status=Status.REJECTED, body=""),
        }
        made["parent"] = parent
        db.session.flush()
        db.session.add(
            Flag(comment_id=made["approved"].id, user_id=flagger.id, reason="rude", note="<i>")
        )
        db.session.add(Flag(comment_id=made["approved"].id, user_id=member.id, reason="spam"))
        db.session.commit()
        return {k: c.id for k, c in made.items()} | {
            "mod": moderator.id,
            "post": post.id,
            "member": member.id,
            "banned_user": banned.id,
        }


@pytest.fixture
def mod_client(client, ids):
    login_as(client, ids["mod"])
    return client


def items_of(html: str) -> str:
    """The page's list of items, its CSRF tokens masked (a token carries its second)."""
    items = html[html.index('<ol class="queue"') : html.index("</ol>")]
    return re.sub(r'(name="csrf_token" value=|data-csrf=)"[^"]+"', r"\1", items)


def page(client, url: str = "/moderation/") -> str:
    return client.get(url).get_data(as_text=True)


@pytest.mark.parametrize("tab", queue_service.TABS)
def test_items_are_what_the_macro_renders_from_the_comments(app, ids, tab):
    """Every tab's items from the page's plain values equal the macro's rendering of the
    ORM comments (as the item page renders them), with every name it reads defined."""
    app.jinja_env.undefined = StrictUndefined
    app.jinja_env.cache.clear()
    with app.test_request_context("/moderation/?tab=" + tab):
        page = queue_service.queue_page(queue_service.QueueFilter(tab=tab), 25)
        assert page.items, tab
        links = query.ItemLinks()
        here = f'/moderation/?tab={tab}&q="<x>"'
        from_views = str(fragments.render_items(page, here, links))
        again = str(fragments.render_items(page, here, links))  # from the kept items
        macro = app.jinja_env.get_template("moderation/_macros.html").module
        comments = [db.session.get(Comment, item.id) for item in page.items]
        from_orm = "".join(
            str(
                macro.queue_item(
                    c,
                    page.histories.get(queue_service.author_key(c)),
                    page.flags.get(c.id),
                    sanitize.excerpt,
                    here,
                    links,
                    csrf=generate_csrf(),
                )
            )
            for c in comments
        )
    assert from_views == from_orm
    assert again == from_orm


def test_every_kind_of_item_is_in_the_walk(app, ids):
    """The walk above meets a reply, a guest with everything, an account, a banned account,
    flags, hold reasons, a spam score with its reasons and a sanitizer report."""
    with app.test_request_context("/moderation/"):
        items = [
            item
            for tab in queue_service.TABS
            for item in queue_service.queue_page(queue_service.QueueFilter(tab=tab), 25).items
        ]
        flagged = queue_service.queue_page(queue_service.QueueFilter(tab="flagged"), 25)
    assert any(i.parent for i in items)
    assert any(i.user and i.user.is_banned for i in items)
    assert any(i.user and not i.user.is_banned for i in items)
    assert any(i.reasons and i.spam_reasons and i.sanitizer_report and i.ip for i in items)
    assert len(flagged.flags[ids["approved"]]) == 2


def test_second_page_load_renders_no_item(app, mod_client, ids, monkeypatch):
    first = mod_client.get("/moderation/").get_data(as_text=True)
    rendered = []
    real = app.jinja_env.get_template

    def counting(name, *args, **kw):
        rendered.append(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(app.jinja_env, "get_template", counting)
    second = mod_client.get("/moderation/").get_data(as_text=True)
    assert "moderation/_macros.html" not in rendered
    assert items_of(second) == items_of(first)


def test_an_item_is_rendered_once_for_every_page_that_shows_it(app, mod_client, ids):
    """The first page and a filtered page share the guest's kept item; each item's form
    goes back to the page it is on."""
    first = mod_client.get("/moderation/").get_data(as_text=True)
    kept = len(app.extensions[fragments.EXTENSION])
    filtered = mod_client.get("/moderation/?author=gus@example.org&order=oldest")
    assert len(app.extensions[fragments.EXTENSION]) == kept
    item = item_html(filtered.get_data(as_text=True), ids["guest"])
    assert 'name="next" value="/moderation/?author=gus@example.org&amp;order=oldest"' in item
    assert 'name="next" value="/moderation/"' in item_html(first, ids["guest"])


# What an item shows changes: the next page shows it, however the change was made.
# Each: (comment, SQL run behind the application's back, text the item then shows).
ITSELF = "WHERE id = :c"
ITS_PARENT = "WHERE id = (SELECT parent_id FROM comment WHERE id = :c)"
ITS_USER = "WHERE id = (SELECT user_id FROM comment WHERE id = :c)"
ITS_POST = "WHERE id = (SELECT post_id FROM comment WHERE id = :c)"
CHANGES = {
    "body": ("guest", f"UPDATE comment SET body_html = '<p>Edited</p>' {ITSELF}", "Edited"),
    "raw text": ("guest", f"UPDATE comment SET body_source = 'raw edit' {ITSELF}", "raw edit"),
    "author name": ("guest", f"UPDATE comment SET author_name = 'Gustav' {ITSELF}", "Gustav"),
    "email": (
        "guest",
        f"UPDATE comment SET author_email = 'n@example.org' {ITSELF}",
        "n@example.org",
    ),
    "ip": ("guest", f"UPDATE comment SET ip = '198.51.100.4' {ITSELF}", "198.51.100.4"),
    "spam score": ("guest", f"UPDATE comment SET spam_score = 0.25 {ITSELF}", "0.25"),
    "hold reason": (
        "guest",
        "UPDATE hold_reason SET detail = 'three' WHERE comment_id = :c",
        "three",
    ),
    "parent text": (
        "reply",
        f"UPDATE comment SET body_html = '<p>Parent now</p>' {ITS_PARENT}",
        "Parent now",
    ),
    "parent status": (
        "reply",
        f"UPDATE comment SET status = 'spam' {ITS_PARENT}",
        'label-spam">spam',
    ),
    "account name": (
        "reply",
        f"UPDATE \"user\" SET username = 'Martina' {ITS_USER}",
        "account: Martina",
    ),
    "ban": ("reply", f'UPDATE "user" SET is_banned = :t {ITS_USER}', "account: Marta, banned"),
    "post title": ("guest", f"UPDATE post SET title = 'Renamed post' {ITS_POST}", "Renamed post"),
    # The history is the author's maintained row (services/author_counts.py).
    "history": (
        "banned",
        "UPDATE author_counter SET approved = approved + 1 WHERE author ="
        " (SELECT 'user:' || CAST(user_id AS VARCHAR(20)) FROM comment WHERE id = :other)",
        "1 approved",
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_made_anywhere_shows_on_the_next_load(app, mod_client, ids, change):
    which, sql, shown = CHANGES[change]
    comment_id = ids[which]
    with app.app_context():  # another comment of the same account, for its history
        post = db.session.get(Post, ids["post"])
        other = make_comment(
            post, status=Status.PENDING, user=db.session.get(User, ids["banned_user"])
        )
        db.session.commit()
        other_id = other.id
    before = item_html(mod_client.get("/moderation/").get_data(as_text=True), comment_id)
    assert shown not in before
    with app.app_context():
        db.session.execute(text(sql), {"c": comment_id, "t": True, "other": other_id})
        db.session.commit()
    after = item_html(mod_client.get("/moderation/").get_data(as_text=True), comment_id)
    assert shown in after


# The same changes made through the session, as the application makes them: as ORM
# objects (a flush) and as statements. (model, which row, column, value, text then shown)
def _the(key):
    return lambda ids: ids[key]


def _parent_of(key):
    return lambda ids: db.session.get(Comment, ids[key]).parent_id


def _user_of(key):
    return lambda ids: db.session.get(Comment, ids[key]).user_id


def _post_of(key):
    return lambda ids: db.session.get(Comment, ids[key]).post_id


def _reason_of(key):
    return lambda ids: db.session.scalars(
        select(HoldReason.id).where(HoldReason.comment_id == ids[key])
    ).first()


def _history_of(key):
    return lambda ids: f"user:{db.session.get(Comment, ids[key]).user_id}"


SESSION_CHANGES = {
    "body": ("guest", Comment, _the("guest"), "body_html", "<p>Edited</p>", "Edited"),
    "author name": ("guest", Comment, _the("guest"), "author_name", "Gustav", "Gustav"),
    "spam score": ("guest", Comment, _the("guest"), "spam_score", 0.25, "0.25"),
    "hold reason": ("guest", HoldReason, _reason_of("guest"), "detail", "three", "three"),
    "parent text": ("reply", Comment, _parent_of("reply"), "body_html", "<p>Now</p>", "Now"),
    "parent status": (
        "reply",
        Comment,
        _parent_of("reply"),
        "status",
        Status.SPAM,
        'label-spam">spam',
    ),
    "account name": ("reply", User, _user_of("reply"), "username", "Martina", ": Martina"),
    "ban": ("reply", User, _user_of("reply"), "is_banned", True, "account: Marta, banned"),
    "post title": ("guest", Post, _post_of("guest"), "title", "Renamed post", "Renamed post"),
    "history": ("banned", AuthorCounter, _history_of("banned"), "approved", 7, "7 approved"),
}


@pytest.mark.parametrize("how", ["object", "statement"])
@pytest.mark.parametrize("change", SESSION_CHANGES)
def test_a_change_through_the_session_shows_on_the_next_load(app, mod_client, ids, change, how):
    which, model, row, column, value, shown = SESSION_CHANGES[change]
    before = item_html(page(mod_client), ids[which])
    assert shown not in before
    with app.app_context():
        key = row(ids)
        if how == "object":
            setattr(db.session.get(model, key), column, value)
        else:
            primary = inspect(model).primary_key[0]
            db.session.execute(update(model).where(primary == key).values({column: value}))
        db.session.commit()
    assert shown in item_html(page(mod_client), ids[which])


def test_a_new_flag_and_its_resolution_show_on_the_next_load(app, mod_client, ids):
    flagged = ids["guest"]
    assert "Flagged" not in item_html(page(mod_client), flagged)
    with app.app_context():
        db.session.add(Flag(comment_id=flagged, user_id=ids["member"], reason="offtopic"))
        db.session.commit()
    assert "Flagged <strong>offtopic</strong> by Marta" in item_html(page(mod_client), flagged)
    with app.app_context():
        db.session.execute(text("UPDATE flag SET resolved = :t"), {"t": True})
        db.session.commit()
    assert "Flagged" not in item_html(page(mod_client), flagged)


def test_another_flag_on_a_flagged_comment_shows_on_the_next_load(app, mod_client, ids):
    """No count moves (the comment was flagged already): the flag itself bumps the queue."""
    flagged = ids["approved"]
    page(mod_client, "/moderation/?tab=flagged")
    with app.app_context():
        db.session.add(Flag(comment_id=flagged, user_id=ids["mod"], reason="offtopic"))
        db.session.commit()
    shown = item_html(page(mod_client, "/moderation/?tab=flagged"), flagged)
    assert "Flagged <strong>offtopic</strong> by mod" in shown


def test_every_item_carries_this_requests_token_and_it_works(app, ids):
    """The kept items hold a marker, not a token: each page's forms carry the token of the
    page they are on, and a kept item's form approves with CSRF on."""
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    login_as(client, ids["mod"])
    client.get("/moderation/")
    page = client.get("/moderation/").get_data(as_text=True)
    items = page[page.index('<ol class="queue"') : page.index("</ol>")]
    tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', items))
    assert len(tokens) == 1
    assert re.search(r'data-csrf="([^"]+)"', page).group(1) in tokens
    token = re.search(r'name="csrf_token" value="([^"]+)"', item_html(page, ids["guest"])).group(1)
    assert app.extensions["page_cache"].mark not in page
    resp = client.post(f"/moderation/comments/{ids['guest']}/approve", data={"csrf_token": token})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Comment, ids["guest"]).status is Status.APPROVED


@pytest.mark.parametrize("app_config", [{"MODERATION_ITEM_CACHE_BYTES": 0}])
def test_without_a_budget_every_item_is_rendered(app, mod_client, ids):
    first = mod_client.get("/moderation/").get_data(as_text=True)
    assert len(app.extensions[fragments.EXTENSION]) == 0
    assert f'id="item-{ids["guest"]}"' in first


@pytest.mark.parametrize("app_config", [{"MODERATION_ITEM_CACHE_BYTES": 40_000}])
def test_kept_items_stay_within_their_budget(app, mod_client, ids):
    with app.app_context():
        post = db.session.get(Post, ids["post"])
        for n in range(40):
            make_comment(post, status=Status.PENDING, body=f"Filler {n} " + "words " * 300)
        db.session.commit()
    for tab in queue_service.TABS:
        assert mod_client.get(f"/moderation/?tab={tab}&per_page=50").status_code == 200
    kept = app.extensions[fragments.EXTENSION]
    assert 0 < kept.bytes <= 40_000
    assert len(kept) < 40


# The post filter's options, as the template rendered them before they were kept.
OPTIONS_TEMPLATE = (
    '<option value="">All posts</option>'
    '{% for pid, title, pending in posts %}<option value="{{ pid }}"'
    "{% if selected == pid %} selected{% endif %}>{{ title }}"
    "{% if pending %} ({{ pending }} pending){% endif %}</option>{% endfor %}"
    "{% if selected and selected not in posts|map(attribute=0)|list %}"
    '<option value="{{ selected }}" selected>Post {{ selected }}</option>{% endif %}'
)


def options_of(html: str) -> str:
    return html[html.index('<select name="post">') + 20 : html.index("</select>")]


def test_the_post_filter_shows_every_change_to_its_counts(app, mod_client, ids):
    """The options equal a plain Jinja rendering of the same rows (titles escaped, the
    chosen post marked, an older chosen post added), and a new held comment or a decision
    shows in the next page's count although the options are kept between requests."""
    with app.app_context():
        expect = app.jinja_env.from_string(OPTIONS_TEMPLATE)
        older = make_post(db.session.get(User, ids["mod"]), title="Older <post>")
        db.session.commit()
        older_id = older.id
    for _ in range(2):  # the second time from what was kept
        for url, selected in (
            ("/moderation/", None),
            (f"/moderation/?post={ids['post']}", ids["post"]),
            (f"/moderation/?post={older_id + 1000}", older_id + 1000),
        ):
            with app.app_context():
                rows = queue_service.posts_for_filter()
                want = expect.render(posts=rows, selected=selected)
            assert options_of(page(mod_client, url)) == want
    assert "A post &#34;quoted&#34; &amp; &lt;odd&gt; (4 pending)" in page(mod_client)
    with app.app_context():
        make_comment(db.session.get(Post, ids["post"]), status=Status.PENDING)
        db.session.commit()
    assert "(5 pending)" in options_of(page(mod_client))
    token = re.search(r'data-csrf="([^"]+)"', page(mod_client)).group(1)
    mod_client.post(f"/moderation/comments/{ids['guest']}/approve", data={"csrf_token": token})
    assert "(4 pending)" in options_of(page(mod_client))
    assert options_of(page(mod_client, "/moderation/?tab=flagged")) == (
        '<option value="">All posts</option>'
    )


# The page around the items (fragments.render_page) ----------------------------------


def masked(html: str) -> str:
    """A page with its CSRF token (the same in every form of one page) masked."""
    token = re.search(r'data-csrf="([^"]+)"', html).group(1)
    return html.replace(token, "TOKEN")


def rendered_now(app, client, url: str) -> str:
    """The page as the template renders it for this request, no page kept."""
    app.extensions[fragments.PAGES].clear()
    app.extensions[fragments.WHOLE].clear()
    return masked(page(client, url))


def frame_urls(ids) -> list[str]:
    return [f"/moderation/?tab={tab}" for tab in queue_service.TABS] + [
        "/moderation/",
        '/moderation/?q="<x>"&order=oldest',
        "/moderation/?author=gus@example.org",
        f"/moderation/?post={ids['post']}&order=score",
        "/moderation/?group=ip&value=2001:db8::1",
        "/moderation/?per_page=1",
    ]


def paged_urls(client, ids) -> list[str]:
    """frame_urls, and the second and third pages of a paged queue."""
    urls = frame_urls(ids)
    first = page(client, "/moderation/?per_page=1")
    second = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    third = re.search(r'rel="next" href="([^"]+)"', page(client, second)).group(1)
    return [*urls, second, third.replace("&amp;", "&")]


def test_the_page_around_the_items_is_what_the_template_renders(app, mod_client, ids):
    """Every tab, filter and order, and each page of a paged queue (its next and previous
    links), served from the kept frame is the page the template renders."""
    app.extensions[fragments.WHOLE] = MemoryCache(0, fragments._size)  # frames only
    urls = paged_urls(mod_client, ids)
    for url in urls:
        now = rendered_now(app, mod_client, url)
        assert masked(page(mod_client, url)) == now, url  # from the kept frame
    assert len(app.extensions[fragments.PAGES]) == 1
    for url in urls:
        page(mod_client, url)
    assert len(app.extensions[fragments.PAGES]) == len(set(urls))


def test_a_kept_whole_page_is_what_the_template_renders_for_two_reads(app, mod_client, ids):
    """Served whole (fragments.kept_whole), every page is the template's rendering, and
    costs the moderator's row and the queue's version: two statements."""
    urls = paged_urls(mod_client, ids)
    for url in urls:
        now = rendered_now(app, mod_client, url)
        with count_queries(app) as statements:
            assert masked(page(mod_client, url)) == now, url
        assert len(statements) == 2 and "page_version" in statements[1], url
    for url in urls:
        page(mod_client, url)
    assert len(app.extensions[fragments.WHOLE]) == len(set(urls))


def test_each_request_gets_its_own_token_in_a_kept_page(app, ids):
    """The second moderator session is served the page the first one's request rendered:
    with its own token in every form, none of the first's, and the token works."""
    app.config["WTF_CSRF_ENABLED"] = True
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        login_as(client, ids["mod"])
    first = page(clients[0])
    with count_queries(app) as statements:
        kept = page(clients[1])
    assert len(statements) == 2  # the moderator's row and the version: the kept page
    tokens = [re.search(r'data-csrf="([^"]+)"', p).group(1) for p in (first, kept)]
    assert tokens[0] != tokens[1] and tokens[0] not in kept
    assert kept.count(tokens[1]) == first.count(tokens[0]) > 5  # every form of the page
    answer = clients[1].post(
        f"/moderation/comments/{ids['guest']}/approve", data={"csrf_token": tokens[1]}
    )
    assert answer.status_code == 302


def _rename(app, ids):
    with app.app_context():
        db.session.get(User, ids["mod"]).username = "Renamed"
        db.session.commit()


def _promote(app, ids):
    with app.app_context():
        db.session.get(User, ids["mod"]).role = Role.ADMIN
        db.session.commit()


def _new_comment(app, ids):
    with app.app_context():
        make_comment(db.session.get(Post, ids["post"]), status=Status.PENDING)
        db.session.commit()


def _new_post(app, ids):
    with app.app_context():
        make_post(db.session.get(User, ids["mod"]), title="A newer post")
        db.session.commit()


def _flag(app, ids):
    with app.app_context():
        db.session.add(Flag(comment_id=ids["spam"], user_id=ids["member"], reason="spam"))
        db.session.commit()


FRAME_CHANGES = {
    "a comment flagged (only the tab counts)": (_flag, 'id="count-flagged">2<'),
    "the moderator's name": (_rename, "<strong>Renamed</strong>"),
    "made an admin": (_promote, 'href="/moderation/settings"'),
    "a new held comment (counts, badge, the post's count)": (_new_comment, "(5 pending)"),
    "a new post in the filter": (_new_post, "A newer post"),
}


@pytest.mark.parametrize("change", FRAME_CHANGES)
def test_a_change_to_the_page_around_the_items_shows_on_the_next_load(app, mod_client, ids, change):
    make_change, shown = FRAME_CHANGES[change]
    before = page(mod_client)
    assert shown not in before
    make_change(app, ids)
    after = page(mod_client)
    assert shown in after
    assert masked(after) == rendered_now(app, mod_client, "/moderation/")


def test_a_notice_or_a_flash_shows_once_then_the_kept_page(app, ids):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    login_as(client, ids["mod"])
    kept = masked(page(client))
    token = re.search(r'data-csrf="([^"]+)"', page(client)).group(1)
    client.post(f"/moderation/comments/{ids['guest']}/approve", data={"csrf_token": token})
    noticed = page(client)
    assert 'id="count-pending">4<' in kept
    assert 'class="undo-button"' in noticed and 'id="count-pending">3<' in noticed
    again = masked(page(client))
    assert 'class="undo-button"' not in again
    assert again == rendered_now(app, client, "/moderation/")
    flashed = client.get("/moderation/l/broken", follow_redirects=True).get_data(as_text=True)
    assert "That link has expired or is broken" in flashed
    assert "That link has expired" not in page(client)


def test_a_page_with_a_huge_address_is_answered_and_not_kept(app, mod_client, ids):
    """1 MiB of query string is answered (the search is cut to its limit) and never kept:
    the page carries its address (each form's way back), so it is over the budget."""
    url = "/moderation/?q=" + "x" * (1024 * 1024)
    assert mod_client.get(url).status_code == 200
    assert len(app.extensions[fragments.WHOLE]) == 0
    page(mod_client)
    assert len(app.extensions[fragments.WHOLE]) == 1
