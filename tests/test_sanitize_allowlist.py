"""Sanitizer: the allowlists of comments and posts, what is stripped and reported."""

from __future__ import annotations

import pytest

from forum.services.sanitize import (
    SanitizeResult,
    sanitize_comment,
    sanitize_post,
)
from tests.helpers import POST_TAGS, REL, assert_safe

# --- allowlist


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("<b>x</b>", "<p><b>x</b></p>"),
        ("<i>x</i>", "<p><i>x</i></p>"),
        ("<em>x</em>", "<p><em>x</em></p>"),
        ("<strong>x</strong>", "<p><strong>x</strong></p>"),
        ("<s>x</s>", "<p><s>x</s></p>"),
        ("<del>x</del>", "<p><del>x</del></p>"),
        ("<code>x</code>", "<p><code>x</code></p>"),
        ("<q>x</q>", "<p><q>x</q></p>"),
        ('<q cite="https://x.org/s">x</q>', '<p><q cite="https://x.org/s">x</q></p>'),
        ('<abbr title="HyperText">HTML</abbr>', '<p><abbr title="HyperText">HTML</abbr></p>'),
        ("<p>x</p>", "<p>x</p>"),
        ("a<br>b", "<p>a<br>b</p>"),
        ("<pre>x</pre>", "<pre>x</pre>"),
        ("<blockquote>x</blockquote>", "<blockquote><p>x</p></blockquote>"),
        (
            '<blockquote cite="https://x.org/">x</blockquote>',
            '<blockquote cite="https://x.org/"><p>x</p></blockquote>',
        ),
        ("<ul><li>x</li></ul>", "<ul><li>x</li></ul>"),
        ("<ol><li>x</li><li>y</li></ol>", "<ol><li>x</li><li>y</li></ol>"),
        (
            '<a href="https://x.org" title="t">x</a>',
            f'<p><a href="https://x.org" title="t" rel="{REL}">x</a></p>',
        ),
        (
            '<a href="mailto:ann@example.org">mail</a>',
            f'<p><a href="mailto:ann@example.org" rel="{REL}">mail</a></p>',
        ),
        ("<a>no href</a>", "<p>no href</p>"),  # no target, no link: the text stays
    ],
)
def test_allowed_markup_is_kept_exactly(source: str, expected: str) -> None:
    result = sanitize_comment(source)
    assert result == SanitizeResult(expected, ())
    assert sanitize_post(source) == result


@pytest.mark.parametrize(
    ("source", "expected", "removed"),
    [
        ("<span>hi</span>", "<p>hi</p>", "tag <span>"),
        ("<u>hi</u>", "<p>hi</p>", "tag <u>"),
        ("<font color=red>hi</font>", "<p>hi</p>", "tag <font>"),
        ("<div>hi</div>", "<p>hi</p>", "tag <div>"),
        ("<h1>hi</h1>", "<p>hi</p>", "tag <h1>"),
        ("<h2>hi</h2>", "<p>hi</p>", "tag <h2>"),
        (
            "<table><tr><td>hi</td></tr></table>",
            "<p>hi</p>",
            ("tag <table>", "tag <tbody>", "tag <tr>", "tag <td>"),
        ),
        ("<img src=x.png>hi", "<p>hi</p>", "tag <img>"),
        ("<script>alert(1)</script>hi", "<p>hi</p>", "tag <script>"),
        ("<style>p{}</style>hi", "<p>hi</p>", "tag <style>"),
        ("<!-- note -->hi", "<p>hi</p>", "HTML comment"),
        ("<body onload=alert(1)>hi", "<p>hi</p>", "tag <body>"),
        ('<b class="c">hi</b>', "<p><b>hi</b></p>", "attribute class on <b>"),
        ('<p style="color:red">hi</p>', "<p>hi</p>", "attribute style on <p>"),
        ("<b onclick=alert(1)>hi</b>", "<p><b>hi</b></p>", "attribute onclick on <b>"),
        ("<abbr id=x>hi</abbr>", "<p><abbr>hi</abbr></p>", "attribute id on <abbr>"),
        (
            '<a href="https://x.org" target="_blank">hi</a>',
            f'<p><a href="https://x.org" rel="{REL}">hi</a></p>',
            "attribute target on <a>",
        ),
        (
            '<a href="javascript:alert(1)">hi <b>there</b></a>',
            "<p>hi <b>there</b></p>",
            "link scheme javascript: on <a href>",
        ),
        (
            '<q cite="javascript:alert(1)">hi</q>',
            "<p><q>hi</q></p>",
            "link scheme javascript: on <q cite>",
        ),
        (
            '<blockquote cite="data:text/html,x">hi</blockquote>',
            "<blockquote><p>hi</p></blockquote>",
            "link scheme data: on <blockquote cite>",
        ),
        (
            "<a href=x>hi</a><img src='",
            f'<p><a href="x" rel="{REL}">hi</a></p>',
            "unfinished tag at the end",
        ),
    ],
)
def test_disallowed_markup_is_stripped_and_reported(
    source: str, expected: str, removed: str | tuple[str, ...]
) -> None:
    result = sanitize_comment(source)
    assert result.html == expected
    assert result.removed == (removed if isinstance(removed, tuple) else (removed,))


@pytest.mark.parametrize("text", ["", "hello", "a < b & c > d", "1 <3 you", "x </3 y", "AT&T"])
def test_plain_text_reports_nothing(text: str) -> None:
    assert sanitize_comment(text).removed == ()


def test_report_is_deduplicated_in_document_order() -> None:
    source = "<u>1</u><span onclick=x>2</span><u>3</u><b onclick=y>4</b><span>5</span>"
    assert sanitize_comment(source).removed == (
        "tag <u>",
        "tag <span>",
        "attribute onclick on <b>",
    )


def test_huge_reports_are_summarised() -> None:
    source = "".join(f"<b data-{n}=1>x</b>" for n in range(60))
    removed = sanitize_comment(source).removed
    assert len(removed) == 25
    assert removed[-1] == "and 36 more"


@pytest.mark.parametrize("tag", ["h2", "h3", "h4"])
def test_post_allows_subheadings_that_comments_strip(tag: str) -> None:
    source = f"<{tag}>Title</{tag}>Body"
    assert sanitize_post(source) == SanitizeResult(f"<{tag}>Title</{tag}>\n<p>Body</p>", ())
    assert sanitize_comment(source).removed == (f"tag <{tag}>",)


def test_post_allows_hr_and_https_images_comments_neither() -> None:
    assert sanitize_post("a<hr>b") == SanitizeResult("<p>a</p>\n<hr>\n<p>b</p>", ())
    assert sanitize_comment("a<hr>b").removed == ("tag <hr>",)
    assert sanitize_comment('<img src="https://x.org/a.png">').removed == ("tag <img>",)


LAZY = 'loading="lazy" decoding="async"'


@pytest.mark.parametrize(
    ("source", "expected", "removed"),
    [
        (
            '<figure class="wp-caption"><img class="wp-image-5" src="https://x.org/a.jpg" '
            'alt="A boat" width="435" height="288"><figcaption>Boat</figcaption></figure>',
            f'<figure><img src="https://x.org/a.jpg" alt="A boat" width="435" height="288" {LAZY}>'
            "<figcaption>Boat</figcaption></figure>",
            ("attribute class on <figure>", "attribute class on <img>"),
        ),
        (
            'a <img src="https://x.org/a.png" loading="eager" onerror="alert(1)"> b',
            f'<p>a <img src="https://x.org/a.png" {LAZY}> b</p>',
            ("attribute onerror on <img>",),
        ),
        (
            '<img src="https://x.org/a.png" width="100%">',
            f'<p><img src="https://x.org/a.png" {LAZY}></p>',
            ("width on <img>",),
        ),
        *(
            (
                f'<img src="{src}">x',
                "<p>x</p>",
                ("source that is not https on <img>", "image without an https source"),
            )
            for src in (
                "x.png",
                "http://x.org/a.png",
                "//x.org/a.png",
                "javascript:alert(1)",
                "data:image/png;base64,AAAA",
                "https://user:pw@x.org/a.png",
                "https:/x.org",
            )
        ),
    ],
)
def test_post_images_need_an_https_source_and_load_lazily(source, expected, removed) -> None:
    result = sanitize_post(source)
    assert result == SanitizeResult(expected, removed)
    assert sanitize_post(result.html) == SanitizeResult(expected, ())
    assert_safe(result.html, POST_TAGS)


@pytest.mark.parametrize(
    "tag",
    [
        "script", "style", "template", "iframe", "noscript", "noembed", "noframes", "object",
        "select", "textarea", "title", "xmp", "video", "audio",
    ],
)  # fmt: skip
def test_content_of_dangerous_containers_never_comes_back_as_markup(tag: str) -> None:
    source = f"<{tag}><b>bold</b><img src=x onerror=alert(1)><a href=/x>l</a></{tag}>after"
    result = sanitize_comment(source)
    assert_safe(result.html)
    assert "<b>" not in result.html
    assert "<a" not in result.html
    assert f"tag <{tag}>" in result.removed
    assert result.html.endswith("after</p>")


@pytest.mark.parametrize("root", ["svg", "math"])
def test_foreign_content_goes_but_html_breakouts_stay_html(root: str) -> None:
    inner = "<a href=/x><text>in</text></a><set onbegin=alert(1)><style>x</style>"
    result = sanitize_comment(f"<{root}>{inner}</{root}>after")
    assert result.html == "<p>after</p>"
    assert result.removed[0] == f"tag <{root}>"
    # <b> is a breakout tag: browsers close the <svg>/<math> and parse it as plain HTML.
    assert sanitize_comment(f"<{root}><b>x</b></{root}>").html == "<p><b>x</b></p>"
