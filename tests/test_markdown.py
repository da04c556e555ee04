"""Markdown bodies: rendered by markdown-it-py, then the sanitizer; every HTML body as before."""

from __future__ import annotations

import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

# The same spec parser browsers follow; html5lib ships inside bleach.
from bleach._vendor import html5lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygments.token import STANDARD_TYPES
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import BodyFormat, Comment, OutboxMail, Post, Role, Status
from forum.services import markdown
from forum.services.markdown import Kind, render
from forum.services.sanitize import SanitizeResult, sanitize_comment, sanitize_post
from forum.tools import demo, transfer, wxr
from tests.factories import make_comment, make_post, make_user
from tests.helpers import login_as
from tests.test_sanitize_text import CORPUS

DATA = Path(__file__).parent / "data"
REL = 'rel="nofollow ugc noopener"'


def md(source: str, kind: Kind = Kind.COMMENT):
    return render(source, BodyFormat.MARKDOWN, kind)


@pytest.mark.parametrize(
    ("source", "expected", "removed"),
    [
        (
            "**bold** _it_ ~~gone~~ `x`",
            "<p><strong>bold</strong> <em>it</em> <s>gone</s> <code>x</code></p>",
            (),
        ),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>", ()),
        ("[x](JaVaScRiPt:alert(1))", "<p>[x](JaVaScRiPt:alert(1))</p>", ()),
        ("[x](data:text/html,hi)", "<p>[x](data:text/html,hi)</p>", ()),
        ("[x](vbscript:msgbox)", "<p>[x](vbscript:msgbox)</p>", ()),
        ("<javascript:alert(1)>", "<p>&lt;javascript:alert(1)&gt;</p>", ()),
        (
            '<a href="javascript:alert(1)">x</a>',
            "<p>x</p>",
            ("link scheme javascript: on <a href>",),
        ),
        (
            "[ref][1]\n\n[1]: https://example.org 'Its title'",
            f'<p><a href="https://example.org" title="Its title" {REL}>ref</a></p>',
            (),
        ),
        (
            "[ref][1]\n\n[1]: javascript:alert(1)",
            "<p>[ref][1]</p>\n<p>[1]: javascript:alert(1)</p>",
            (),
        ),
        (
            "<https://example.org/a?b=1&c=2>",
            f'<p><a href="https://example.org/a?b=1&amp;c=2" {REL}>https://example.org/a?b=1&amp;c=2</a></p>',
            (),
        ),
        (
            "<ann@example.org>",
            f'<p><a href="mailto:ann@example.org" {REL}>ann@example.org</a></p>',
            (),
        ),
        (
            "see https://example.org.",
            f'<p>see <a href="https://example.org" {REL}>https://example.org</a>.</p>',
            (),
        ),
        (
            "![alt](https://example.org/i.png)",
            f'<p>!<a href="https://example.org/i.png" {REL}>alt</a></p>',
            (),
        ),
        ("![x](javascript:alert(1))", "<p>![x](javascript:alert(1))</p>", ()),
        ("<div onclick=alert(1)>\n\n*hi*\n\n</div>", "<p><em>hi</em></p>", ("tag <div>",)),
        ("<script>alert(1)</script>", "", ("tag <script>",)),
        (
            '<b>allowed</b> and <abbr title="x">HTML</abbr>',
            '<p><b>allowed</b> and <abbr title="x">HTML</abbr></p>',
            (),
        ),
        (
            "`<script>alert(1)</script>`",
            "<p><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></p>",
            (),
        ),
        ("`<b onclick=x>`", "<p><code>&lt;b onclick=x&gt;</code></p>", ()),
        (
            '[t](https://example.org "say \\"hi\\" \'now\'")',
            f'<p><a href="https://example.org" title="say &quot;hi&quot; \'now\'" {REL}>t</a></p>',
            (),
        ),
        (
            '[t](https://example.org "a\\" onmouseover=\\"x")',
            f'<p><a href="https://example.org" title="a&quot; onmouseover=&quot;x" {REL}>t</a></p>',
            (),
        ),
        ("*a **b* c**", "<p><em>a <em><em>b</em> c</em></em></p>", ()),
        ("**a *b** c*", "<p><em><em>a <em>b</em></em> c</em></p>", ()),
        ("<em>open *never closed", "<p><em>open *never closed</em></p>", ()),
        ("</em></p><p>x", "<p>x</p>", ()),
        ("> quote\n> more", "<blockquote><p>quote<br>more</p></blockquote>", ()),
        ("- a\n- b", "<ul><li>a</li><li>b</li></ul>", ()),
        ("3. c\n4. d", "<ol><li>c</li><li>d</li></ol>", ()),
        ("a\n\n---\n\nb", "<p>a</p>\n<p>---</p>\n<p>b</p>", ()),
        ("# Title", "<p># Title</p>", ()),
        (
            "```\n<script>x</script>\n```",
            "<pre><code>&lt;script&gt;x&lt;/script&gt;\n</code></pre>",
            (),
        ),
        ("```nosuchlanguage\na < b\n```", "<pre><code>a &lt; b\n</code></pre>", ()),
        (
            "```python\nx = 1\n```",
            '<pre><code>x <span class="o">=</span> <span class="mi">1</span>\n</code></pre>',
            (),
        ),
        (
            '<span class="k">kw</span> <span class="evil">x</span>',
            '<p><span class="k">kw</span> x</p>',
            ("tag <span>",),
        ),
        (
            '<pre><code tabindex="0">x</code></pre>',
            "<pre><code>x</code></pre>",
            ("attribute tabindex on <code>",),
        ),
        (
            "| a | b |\n| --- | :-: |\n| 1 | **2** |",
            '<table><thead><tr><th>a</th><th class="align-center">b</th></tr></thead>'
            '<tbody><tr><td>1</td><td class="align-center"><strong>2</strong></td></tr>'
            "</tbody></table>",
            (),
        ),
        (
            "| x |\n| --: |\n| www.example.org <script>alert(1)</script> |",
            '<table><thead><tr><th class="align-right">x</th></tr></thead><tbody><tr>'
            f'<td class="align-right"><a href="http://www.example.org" {REL}>www.example.org</a>'
            "</td></tr></tbody></table>",
            ("tag <script>",),
        ),
        (
            '<table><tr><td class="evil" style="color:red" onclick="x()">raw</td></tr></table>',
            "<table><tbody><tr><td>raw</td></tr></tbody></table>",
            ("class evil on <td>", "attribute style on <td>", "attribute onclick on <td>"),
        ),
        (
            "| a |\n| - |\n\ntext",
            "<table><thead><tr><th>a</th></tr></thead></table>\n<p>text</p>",
            (),
        ),
        (
            "see www.example.org.",
            f'<p>see <a href="http://www.example.org" {REL}>www.example.org</a>.</p>',
            (),
        ),
        ("a\\\nb", "<p>a<br>b</p>", ()),
        ("a  \nb\nc", "<p>a<br>b<br>c</p>", ()),
    ],
)
def test_commonmark_renders_to_sanitized_html(source, expected, removed):
    result = md(source)
    assert result.html == expected
    assert result.removed == removed


def test_posts_keep_headings_rules_and_images_comments_show_them_as_text():
    source = "# Part\n\n### Small\n\n---\n\n![a cat](https://example.org/cat.png)"
    assert md(source, Kind.POST) == SanitizeResult(
        '<h2>Part</h2>\n<h4>Small</h4>\n<hr>\n<p><img src="https://example.org/cat.png" '
        'alt="a cat" loading="lazy" decoding="async"></p>'
    )
    assert md(source) == SanitizeResult(
        "<p># Part</p>\n<p>### Small</p>\n<p>---</p>\n"
        f'<p>!<a href="https://example.org/cat.png" {REL}>a cat</a></p>'
    )


def test_html_bodies_skip_markdown():
    assert render("*not emphasis*", BodyFormat.HTML, Kind.COMMENT).html == "<p>*not emphasis*</p>"


def test_tables_only_in_markdown_bodies_html_bodies_keep_their_allowlist():
    table = "<table><tr><th>a</th></tr><tr><td>1</td></tr></table>"
    for kind in Kind:
        as_html = render(table, BodyFormat.HTML, kind)
        assert "<table>" not in as_html.html
        assert "tag <table>" in as_html.removed
        as_markdown = render(table, BodyFormat.MARKDOWN, kind)
        assert as_markdown.html.startswith("<table><tbody><tr><th>a</th></tr>")
        assert as_markdown.removed == ()


@pytest.mark.parametrize("kind", list(Kind))
def test_a_rendered_table_sanitizes_to_itself(kind):
    source = "| a | b | c |\n| :- | :-: | -: |\n| `x` | [l](https://e.org) | ~~s~~ |\n| 1 |"
    first = md(source, kind)
    clean = sanitize_post if kind is Kind.POST else sanitize_comment
    assert clean(first.html, tables=True) == SanitizeResult(first.html)


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            assert not name.lower().startswith("on"), (tag, name)
            assert name in {"href", "title", "rel", "cite", "class"}, (tag, name)
            if name in ("href", "cite"):
                scheme = re.match(r"([a-z][a-z0-9+.\-]*):", (value or "").strip().lower())
                assert scheme is None or scheme.group(1) in ("http", "https", "mailto"), value
        if tag != "br":
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        raise AssertionError(f"self-closing <{tag}/>")

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_comment(self, data):
        raise AssertionError("comment in output")


def assert_safe_and_well_formed(output: str) -> None:
    checker = _Checker()
    checker.feed(output)
    checker.close()
    assert not checker.stack, checker.stack
    # As a browser parses it: no script, no handler, whatever the serialization.
    fragment = html5lib.HTMLParser(namespaceHTMLElements=False).parseFragment(output)
    for element in fragment.iter():
        if element is not fragment:
            assert element.tag not in ("script", "img", "iframe", "svg", "style"), element.tag
            assert not any(k.lower().startswith("on") for k in element.attrib)


MARKDOWNISH = st.lists(
    st.sampled_from(
        list("*_`~[]()<>!#>-+=|\\\"' \n\t:/.&;") + ["javascript:", "http://", "https://x.org",
        "<a href=", "<script>", "onclick=", "```", "<b>", "</b>", "&#106;", "mailto:", "a", "1",
        "|", "| --- |", "\n| - | :-: |\n", "<td>", "<table>", "www.x.org"]
    ),
    max_size=40,
).map("".join)  # fmt: skip


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.one_of(MARKDOWNISH, st.text(max_size=60)))
def test_any_text_renders_to_safe_well_formed_html_the_same_every_time(source):
    first = md(source)
    assert_safe_and_well_formed(first.html)
    assert md(source) == first


@pytest.mark.parametrize("payload", CORPUS)
def test_xss_corpus_through_markdown_is_neutralised(payload):
    for kind in Kind:
        result = md(payload, kind)
        if kind is Kind.COMMENT:
            assert_safe_and_well_formed(result.html)
        fragment = html5lib.HTMLParser(namespaceHTMLElements=False).parseFragment(result.html)
        for element in fragment.iter():
            assert element.tag not in ("script", "iframe", "svg", "math", "style", "object")
            assert not any(k.lower().startswith("on") for k in element.attrib)


def test_highlighted_classes_are_pygments_short_names_styled_by_the_shipped_css():
    css = (Path(__file__).parents[1] / "static/css/pygments.css").read_text(encoding="utf-8")
    assert css == markdown.pygments_css(), "run: python -c 'from forum.services.markdown ...'"
    assert "style=" not in md("```js\nlet a = '<b>';\n```").html
    code = md("```python\n@dec\ndef f(): return 'x' + 1  # hi\n```").html
    classes = set(re.findall(r'class="([^"]+)"', code))
    assert {"nd", "k", "nf", "s1", "mi", "c1"} <= classes <= set(STANDARD_TYPES.values())
    styled = set(re.findall(r"\.comment-text pre \.([\w-]+),", css))
    assert {"k", "nf", "s1", "c1"} <= styled <= set(STANDARD_TYPES.values()) | {"hll"}


# Old HTML bodies -------------------------------------------------------------------------


def stored_bodies() -> dict[str, list[str]]:
    return {
        "posts": list(db.session.scalars(select(Post.body_html).order_by(Post.id))),
        "comments": list(db.session.scalars(select(Comment.body_html).order_by(Comment.id))),
    }


def test_demo_and_imported_wordpress_bodies_are_byte_for_byte_as_before(app):
    """tests/data/snapshots/html-bodies.json was written by the code before Markdown."""
    snapshot = json.loads((DATA / "snapshots/html-bodies.json").read_text(encoding="utf-8"))
    with app.app_context():
        demo.load()
        db.session.commit()
        assert stored_bodies() == snapshot["demo"]
        assert set(db.session.scalars(select(Comment.body_format))) == {BodyFormat.HTML}
        db.session.execute(Comment.__table__.delete())
        db.session.execute(Post.__table__.delete())
        db.session.commit()
        with open(DATA / "wxr/hedgerow-blog.xml", "rb") as stream:
            wxr.import_wxr(stream)
        db.session.commit()
        assert stored_bodies() == snapshot["wxr"]
        assert set(db.session.scalars(select(Comment.body_format))) == {BodyFormat.HTML}
        assert set(db.session.scalars(select(Post.body_format))) == {BodyFormat.HTML}


# The forms -------------------------------------------------------------------------------


def guest_comment(post_id: int, body: str, **extra) -> dict:
    return {
        "author_name": "Ann",
        "author_email": "ann@example.org",
        "body": body,
        **extra,
    }


def test_a_guest_comment_is_stored_as_markdown_and_shown_rendered(app, client):
    with app.app_context():
        post_id = make_post().id
        db.session.commit()
    resp = client.post(f"/posts/{post_id}/comments", data=guest_comment(post_id, "**hi** `x`"))
    assert resp.status_code == 302
    with app.app_context():
        comment = db.session.scalars(select(Comment)).one()
        assert comment.body_format is BodyFormat.MARKDOWN
        assert comment.body_source == "**hi** `x`"
        assert comment.body_html == "<p><strong>hi</strong> <code>x</code></p>"


def test_the_link_rule_counts_markdown_links_and_autolinks(app, client):
    with app.app_context():
        post_id = make_post().id
        db.session.commit()
    body = (
        "[one](https://one.example) <https://two.example> https://three.example.org"
        " www.four.example.org"
    )
    client.post(f"/posts/{post_id}/comments", data=guest_comment(post_id, body))
    with app.app_context():
        comment = db.session.scalars(select(Comment)).one()
        assert comment.status is Status.PENDING
        assert comment.link_domain == "one.example"
        assert {r.rule for r in comment.reasons} >= {"links"}
        assert "4 links" in {r.detail for r in comment.reasons}


def test_preview_without_javascript_keeps_the_text_and_stores_nothing(app, client):
    with app.app_context():
        post_id = make_post().id
        db.session.commit()
    body = "**bold** and [a link](https://example.org)\n\n<script>x</script>"
    resp = client.post(
        f"/posts/{post_id}/comments/preview", data=guest_comment(post_id, body, preview="1")
    )
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    expected = md(body).html
    assert f'<div class="comment-text">{expected}</div>' in page
    assert "Will be removed: tag &lt;script&gt;" in page
    assert f">\r\n{html.escape(body, quote=False)}</textarea>" in page
    assert 'value="Ann"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Comment)) == 0
        assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_preview_of_a_reply_keeps_the_reply_target(app, client):
    with app.app_context():
        post = make_post()
        parent_id = make_comment(post).id
        post_id = post.id
        db.session.commit()
    resp = client.post(
        f"/posts/{post_id}/comments/preview",
        data=guest_comment(post_id, "_yes_", parent_id=str(parent_id)),
    )
    page = resp.get_data(as_text=True)
    assert '<div class="comment-text"><p><em>yes</em></p></div>' in page
    assert f'value="{parent_id}"' in page
    assert "Reply to" in page


def test_live_preview_endpoint_renders_each_format(app, client):
    for body_format, expected in (("markdown", "<p><em>x</em></p>"), ("html", "<p>*x*</p>")):
        resp = client.post(
            "/preview", data={"body": "*x*", "body_format": body_format, "kind": "comment"}
        )
        assert resp.status_code == 200
        assert resp.get_data(as_text=True).strip() == f'<div class="comment-text">{expected}</div>'
    bad = client.post("/preview", data={"body": "x", "body_format": "rtf", "kind": "comment"})
    assert bad.status_code == 400


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_live_preview_needs_the_csrf_token(app, client):
    resp = client.post("/preview", data={"body": "x", "body_format": "markdown", "kind": "post"})
    assert resp.status_code == 400


@pytest.mark.parametrize(
    "app_config", [{"RATELIMIT_ENABLED": True, "RATELIMIT_PREVIEW": "2 per minute"}]
)
def test_live_preview_has_its_own_rate_limit(app, client):
    data = {"body": "x", "body_format": "markdown", "kind": "comment"}
    codes = [client.post("/preview", data=data).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_member_edit_shows_the_source_and_keeps_the_format(app, client):
    with app.app_context():
        member = make_user()
        post = make_post()
        markdown_id = make_comment(
            post, user=member, body="**x**", body_format=BodyFormat.MARKDOWN
        ).id
        html_id = make_comment(post, user=member, body="<b>old</b>").id
        member_id = member.id
        db.session.commit()
    login_as(client, member_id)
    page = client.get(f"/comments/{markdown_id}/edit").get_data(as_text=True)
    assert ">\r\n**x**</textarea>" in page and "Markdown: **bold**" in page
    page = client.get(f"/comments/{html_id}/edit").get_data(as_text=True)
    assert ">\r\n&lt;b&gt;old&lt;/b&gt;</textarea>" in page and "This text is HTML" in page
    preview = client.post(f"/comments/{markdown_id}/edit", data={"body": "_y_", "preview": "1"})
    assert '<div class="comment-text"><p><em>y</em></p></div>' in preview.get_data(as_text=True)
    client.post(f"/comments/{markdown_id}/edit", data={"body": "_y_"})
    client.post(f"/comments/{html_id}/edit", data={"body": "_y_"})
    with app.app_context():
        edited = db.session.get(Comment, markdown_id)
        assert (edited.body_format, edited.body_html) == (BodyFormat.MARKDOWN, "<p><em>y</em></p>")
        kept = db.session.get(Comment, html_id)
        assert (kept.body_format, kept.body_html) == (BodyFormat.HTML, "<p>_y_</p>")


def test_moderator_previews_then_edits_and_approves_in_the_comments_format(app, client):
    with app.app_context():
        mod_id = make_user(Role.MODERATOR).id
        comment_id = make_comment(
            make_post(), status=Status.PENDING, body="x", body_format=BodyFormat.MARKDOWN
        ).id
        db.session.commit()
    login_as(client, mod_id)
    url = f"/moderation/comments/{comment_id}/edit"
    resp = client.post(url, data={"body": "**fixed**", "preview": "1"})
    assert resp.status_code == 200
    assert '<div class="comment-text"><p><strong>fixed</strong></p></div>' in resp.get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.get(Comment, comment_id).status is Status.PENDING
    client.post(url, data={"body": "**fixed**"})
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment.status is Status.APPROVED
        assert comment.body_html == "<p><strong>fixed</strong></p>"


def test_new_post_preview_then_publish_in_markdown(app, client):
    with app.app_context():
        admin_id = make_user(Role.ADMIN).id
        db.session.commit()
    login_as(client, admin_id)
    data = {"title": "Hello", "body": "# Part\n\n```python\nx = 1\n```", "tags": ""}
    resp = client.post("/posts/new", data={**data, "preview": "1"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and '<div class="post-body"><h2>Part</h2>' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Post)) == 0
    assert client.post("/posts/new", data=data).status_code == 302
    with app.app_context():
        post = db.session.scalars(select(Post)).one()
        assert post.body_format is BodyFormat.MARKDOWN
        assert post.body_html.startswith('<h2>Part</h2>\n<pre><code>x <span class="o">=</span>')


def test_help_page_shows_examples_as_they_render(client):
    page = client.get("/help/formatting").get_data(as_text=True)
    assert "<td><pre><code>**bold**, _italic_" in page
    assert "<strong>bold</strong>" in page and '<span class="k">def</span>' in page


# Export ----------------------------------------------------------------------------------


def test_export_carries_the_format_and_round_trips(app):
    with app.app_context():
        post = make_post()
        make_comment(post, body="*md*", body_format=BodyFormat.MARKDOWN)
        make_comment(post, body="<i>html</i>")
        db.session.commit()
        out = io.StringIO()
        transfer.export_json(out)
        document = json.loads(out.getvalue())
        assert [c["body_format"] for c in document["comments"]] == ["markdown", "html"]
        assert document["posts"][0]["body_format"] == "html"
        # A body_html the sanitizer would change is rendered again from the source, in its format.
        document["comments"][0]["body_html"] = "<p onclick=x>tampered</p>"
        db.session.remove()
        db.drop_all()
        db.create_all()
        transfer.import_json(io.StringIO(json.dumps(document)))
        db.session.commit()
        rows = db.session.execute(
            select(Comment.body_format, Comment.body_html).order_by(Comment.id)
        ).all()
        assert rows == [
            (BodyFormat.MARKDOWN, "<p><em>md</em></p>"),
            (BodyFormat.HTML, "<p><i>html</i></p>"),
        ]


def test_an_export_made_before_markdown_imports_as_html(app):
    from tests.test_transfer import minimal_document

    document = minimal_document()
    assert "body_format" not in document["comments"][0]
    with app.app_context():
        transfer.import_json(io.StringIO(json.dumps(document)))
        db.session.commit()
        assert set(db.session.scalars(select(Comment.body_format))) == {BodyFormat.HTML}
        assert set(db.session.scalars(select(Post.body_format))) == {BodyFormat.HTML}


def test_live_preview_of_a_comment_over_the_length_limit_says_so(app, client):
    data = {"body": "x" * 10_001, "body_format": "markdown", "kind": "comment"}
    resp = client.post("/preview", data=data)
    assert resp.status_code == 200
    assert "Comments are limited to 10000 characters." in resp.get_data(as_text=True)


def test_highlighting_stops_at_its_budget_and_the_rest_is_plain():
    block = "```python\n" + "x = 1\n" * 100 + "```\n\n"
    html_text = md(block * 3).html
    # Each block has 200 coloured tokens: the first is highlighted, the others are plain.
    assert html_text.count('<span class="mi">') == 100
    assert html_text.count("<pre><code>x = 1\n") == 2


def test_each_body_gets_its_own_highlighting_budget():
    # The parser is reused between bodies: the budget spent by one must not carry over.
    block = "```python\n" + "x = 1\n" * 100 + "```\n\n"
    for _ in range(3):
        html_text = md(block).html
        assert html_text.count('<span class="mi">') == 100


def test_moderator_previews_a_reply_then_publishes_it_in_markdown(app, client):
    with app.app_context():
        mod_id = make_user(Role.MODERATOR).id
        comment_id = make_comment(make_post(), status=Status.PENDING).id
        db.session.commit()
    login_as(client, mod_id)
    url = f"/moderation/comments/{comment_id}/reply"
    resp = client.post(url, data={"body": "Thanks, *fixed*.", "preview": "1"})
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert '<div class="comment-text"><p>Thanks, <em>fixed</em>.</p></div>' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Comment)) == 1
    client.post(url, data={"body": "Thanks, *fixed*."})
    with app.app_context():
        reply = db.session.scalars(select(Comment).where(Comment.parent_id == comment_id)).one()
        assert reply.body_format is BodyFormat.MARKDOWN
        assert reply.body_html == "<p>Thanks, <em>fixed</em>.</p>"


@pytest.mark.parametrize(
    "app_config", [{"RATELIMIT_ENABLED": True, "RATELIMIT_PREVIEW": "1 per minute"}]
)
def test_preview_button_over_its_limit_keeps_the_text(app, client):
    with app.app_context():
        post_id = make_post().id
        db.session.commit()
    url = f"/posts/{post_id}/comments/preview"
    assert client.post(url, data=guest_comment(post_id, "first")).status_code == 200
    resp = client.post(url, data=guest_comment(post_id, "second *try*"))
    assert resp.status_code == 429
    assert ">\r\nsecond *try*</textarea>" in resp.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_live_preview_never_sends_a_session_cookie(app, client):
    """A preview answering after the comment was posted must not restore the old session."""
    with app.app_context():
        post = make_post()
        db.session.commit()
        path = f"/posts/{post.id}/{post.slug}"
    page = client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    data = {"csrf_token": token, "body": "*x*", "body_format": "markdown", "kind": "comment"}
    resp = client.post("/preview", data=data)
    assert resp.status_code == 200 and "<em>x</em>" in resp.get_data(as_text=True)
    assert resp.headers.getlist("Set-Cookie") == []
