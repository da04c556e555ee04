"""Sanitizer: allowlists, paragraphs, links, the XSS corpus, properties and text helpers."""

from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

# Output is checked with the same spec parser browsers follow; html5lib ships inside bleach.
from bleach._vendor import html5lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forum.services.sanitize import (
    InvalidText,
    SanitizeResult,
    body_fingerprint,
    count_links,
    excerpt,
    link_domains,
    normalize_text,
    sanitize_comment,
    sanitize_post,
)

COMMENT_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "code", "del", "em", "i", "q", "s", "strong"}
    | {"ul", "ol", "li", "pre", "p", "br"}
)
POST_TAGS = COMMENT_TAGS | {"h2", "h3", "h4", "hr", "img", "figure", "figcaption"}
OUTPUT_ATTRIBUTES = {
    "a": {"href", "title", "rel"},
    "img": {"src", "alt", "width", "height", "loading", "decoding"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
URL_ATTRIBUTES = {"href", "src", "cite", "action", "formaction", "data", "xlink:href", "poster"}
REL = "nofollow ugc noopener"
PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def load_corpus() -> list[str]:
    """Read tests/xss_corpus.txt: '#' comments and blank lines skipped, literal \\n expanded."""
    text = (Path(__file__).parent / "xss_corpus.txt").read_text(encoding="utf-8")
    # split("\n"), not splitlines(): payloads may hold \x0b, \x1c or U+2028 on purpose.
    return [
        line.replace("\\n", "\n")
        for line in text.split("\n")
        if line.strip() and not line.startswith("#")
    ]


CORPUS = load_corpus()


def scheme_of(value: str) -> str | None:
    """Scheme as a browser could see it: entities decoded, chars <= 0x20 removed."""
    decoded = value
    for _ in range(4):
        decoded = html.unescape(decoded)
    compact = re.sub(r"[\x00-\x20]", "", decoded).lower()
    match = re.match(r"([a-z][a-z0-9+.\-]*):", compact)
    return match.group(1) if match else None


def check_attributes(
    tag: str, attrs: list[tuple[str, str | None]], allowed: frozenset[str]
) -> None:
    assert tag in allowed, f"element <{tag}> in output"
    for name, value in attrs:
        assert not name.lower().startswith("on"), f"event handler {name} on <{tag}>"
        assert name in OUTPUT_ATTRIBUTES.get(tag, set()), f"attribute {name} on <{tag}>"
        if name in URL_ATTRIBUTES:
            assert scheme_of(value or "") in (None, "http", "https", "mailto"), value
    if tag == "a":
        assert dict(attrs).get("rel") == REL
    if tag == "img":
        assert scheme_of(dict(attrs).get("src") or "") == "https", attrs
        assert dict(attrs).get("loading") == "lazy", attrs


class _StdlibTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.stack: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, attrs))
        if tag not in ("br", "hr", "img"):
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.other.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_comment(self, data: str) -> None:
        self.other.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.other.append("declaration")

    def handle_pi(self, data: str) -> None:
        self.other.append("processing instruction")

    def unknown_decl(self, data: str) -> None:
        self.other.append("unknown declaration")


def assert_safe(output: str, allowed: frozenset[str] = COMMENT_TAGS) -> None:
    """Parse the output twice (html5lib as a browser would, then html.parser) and check it."""
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    fragment = parser.parseFragment(output, container="div", scripting=True)
    for element in fragment.iter():
        if element is fragment:
            continue
        assert isinstance(element.tag, str), "comment in output"
        check_attributes(element.tag, list(element.attrib.items()), allowed)

    stdlib = _StdlibTags()
    stdlib.feed(output)
    stdlib.close()
    assert not stdlib.other, stdlib.other
    assert not stdlib.stack, f"unclosed {stdlib.stack}"
    for tag, attrs in stdlib.starts:
        check_attributes(tag, attrs, allowed)

    lowered = output.lower()
    for needle in ("<script", "<svg", "<math", "<iframe", "<img", "<style", "<!--"):
        assert needle not in lowered or needle[1:] in allowed


def has_markup(text: str) -> bool:
    """Whether an HTML tokenizer finds a tag, a <!-- comment --> or a declaration."""

    class Finder(HTMLParser):
        found = False

        def _found(self, *args: Any) -> None:
            self.found = True

        handle_starttag = handle_startendtag = handle_endtag = handle_decl = unknown_decl = _found

        def handle_comment(self, data: str) -> None:
            # "</3" and "</ſ" are bogus comments to a tokenizer; the sanitizer keeps them as text.
            self.found = self.found or "<!" in text

    finder = Finder(convert_charrefs=True)
    finder.feed(text)
    finder.close()
    return finder.found


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


# --- paragraphs


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", ""),
        ("  \n\n \n", ""),
        ("hello", "<p>hello</p>"),
        ("a\nb", "<p>a<br>b</p>"),
        ("a\r\nb\rc", "<p>a<br>b<br>c</p>"),
        ("  a  \n  b  ", "<p>a<br>b</p>"),
        ("a\n\nb", "<p>a</p>\n<p>b</p>"),
        ("a\n \t\n\n\nb", "<p>a</p>\n<p>b</p>"),
        ("<b>a\nb</b>", "<p><b>a<br>b</b></p>"),
        ("<p>one</p><p>two</p>", "<p>one</p>\n<p>two</p>"),
        ("<p>one\ntwo</p>", "<p>one<br>two</p>"),
        ("<p></p>x", "<p>x</p>"),
        ("<pre>a\n\nb\n  c</pre>", "<pre>a\n\nb\n  c</pre>"),
        ("x\n<pre>a\nb</pre>\ny", "<p>x</p>\n<pre>a\nb</pre>\n<p>y</p>"),
        ("<blockquote>a\n\nb</blockquote>", "<blockquote><p>a</p><p>b</p></blockquote>"),
        ("<ul>\n<li>a</li>\n<li>b\nc</li>\n</ul>", "<ul><li>a</li><li>b<br>c</li></ul>"),
        ("text <ul><li>x</li></ul> more", "<p>text</p>\n<ul><li>x</li></ul>\n<p>more</p>"),
        ("<div>a</div><div>b</div>", "<p>a</p>\n<p>b</p>"),
        ("<b>x<p>y</p>z</b>", "<b>x<p>y</p>z</b>"),
    ],
)
def test_blank_lines_make_paragraphs_and_newlines_breaks(source: str, expected: str) -> None:
    assert sanitize_comment(source).html == expected


# --- links


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "see https://example.org/a?b=1&c=2 now",
            f'<p>see <a href="https://example.org/a?b=1&amp;c=2" rel="{REL}">'
            "https://example.org/a?b=1&amp;c=2</a> now</p>",
        ),
        ("example.com", f'<p><a href="http://example.com" rel="{REL}">example.com</a></p>'),
        (
            "(http://x.org/p).",
            f'<p>(<a href="http://x.org/p" rel="{REL}">http://x.org/p</a>).</p>',
        ),
        (
            "<pre>https://x.org</pre>",
            f'<pre><a href="https://x.org" rel="{REL}">https://x.org</a></pre>',
        ),
        ("ann@example.org", "<p>ann@example.org</p>"),
        ("javascript:alert(1)", "<p>javascript:alert(1)</p>"),
        (
            '<a href="https://a.org">https://b.org</a>',
            f'<p><a href="https://a.org" rel="{REL}">https://b.org</a></p>',
        ),
        (
            '<a href="https://a.org" rel="opener">x</a>',
            f'<p><a href="https://a.org" rel="{REL}">x</a></p>',
        ),
    ],
)
def test_bare_urls_are_linkified_with_rel(source: str, expected: str) -> None:
    assert sanitize_comment(source) == SanitizeResult(expected, ())


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("<pre>a &lt; b &amp;&amp; c\n</pre>", "<pre>a &lt; b &amp;&amp; c\n</pre>"),
        ("<pre>if a < b && c > d:</pre>", "<pre>if a &lt; b &amp;&amp; c &gt; d:</pre>"),
        ("<code>x&lt;y</code>", "<p><code>x&lt;y</code></p>"),
        ("<p>AT&amp;T &copy; x&nbsp;y</p>", "<p>AT&amp;T \u00a9 x\u00a0y</p>"),
    ],
)
def test_entities_in_code_are_not_escaped_twice(source: str, expected: str) -> None:
    # bleach.linkify(skip_tags=["pre", "code"]) turns "&lt;" into "&amp;lt;" there.
    once = sanitize_comment(source).html
    assert once == expected
    assert sanitize_comment(once).html == once


@pytest.mark.parametrize(
    "href",
    [
        "https://x.org/a?b=1&amp;c=2",
        "HTTP://X.ORG/",
        "http:x.org",
        "mailto:ann@example.org",
        "/path",
        "//example.com/x",
        "#top",
        "?q=1",
        "page.html",
        "../up/one",
        "a/b:c",
    ],
)
def test_safe_and_plainly_relative_links_are_kept(href: str) -> None:
    result = sanitize_comment(f'<a href="{href}">x</a>')
    assert result.removed == ()
    assert f'href="{href}"' in result.html


@pytest.mark.parametrize(
    ("href", "reason"),
    [
        ("javascript:alert(1)", "link scheme javascript:"),
        ("JaVaScRiPt:alert(1)", "link scheme javascript:"),
        ("javascript:123", "link scheme javascript:"),
        (" javascript:alert(1)", "link scheme javascript:"),
        ("java\tscript:alert(1)", "link scheme javascript:"),
        ("java&#x09;script:alert(1)", "link scheme javascript:"),
        ("java&#0;script:alert(1)", "unrecognised link"),  # &#0; decodes to U+FFFD
        ("&#106;avascript:alert(1)", "link scheme javascript:"),
        ("&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74:1", "link scheme javascript:"),
        ("&#0000106avascript:alert(1)", "link scheme javascript:"),
        ("javascript&colon;alert(1)", "link scheme javascript:"),
        ("javascript&#58alert(1)", "link scheme javascript:"),
        ("&Tab;javascript:alert(1)", "link scheme javascript:"),
        ("&amp;#106;avascript:alert(1)", "link scheme javascript:"),
        ("java\u00adscript:alert(1)", "link scheme javascript:"),
        ("\u200bjavascript:alert(1)", "link scheme javascript:"),
        ("vbscript:msgbox(1)", "link scheme vbscript:"),
        ("data:text/html,<script>alert(1)</script>", "link scheme data:"),
        ("DATA:,x", "link scheme data:"),
        ("ftp://x.org", "link scheme ftp:"),
        ("tel:123", "link scheme tel:"),
        ("jav%61script:alert(1)", "unrecognised link"),
        (":foo", "unrecognised link"),
        ("javaſcript:alert(1)", "unrecognised link"),
        ("", "empty link"),
        ("  ", "empty link"),
    ],
)
def test_odd_links_are_dropped_and_reported(href: str, reason: str) -> None:
    result = sanitize_comment(f'<a href="{href}">x</a>')
    assert result.html == "<p>x</p>"  # the link is unwrapped: an <a> without href is no link
    assert result.removed == (f"{reason} on <a href>",)


# --- the XSS corpus


def test_corpus_is_big_and_covers_the_families() -> None:
    assert len(CORPUS) >= 180
    joined = "\n".join(CORPUS).lower()
    for family in [
        "<script", "onerror", "onload", "ontoggle", "onfocus", "<marquee", "srcdoc",
        "<object", "<embed", "formaction", "xlink:href", "vbscript:", "data:text/html",
        "&#x", "&#0000", "<mglyph", "<noscript", "<![cdata[", "http-equiv", "<base",
        "expression(", "<template", "<noembed", "<xmp", "<plaintext", "<textarea",
        "confirm(1)", "prompt(1)", "print()", "\\u0061", "javascript:123",
    ]:  # fmt: skip
        assert family in joined, family


@pytest.mark.parametrize("payload", CORPUS)
def test_corpus_payload_is_neutralised(payload: str) -> None:
    for sanitize, allowed in ((sanitize_comment, COMMENT_TAGS), (sanitize_post, POST_TAGS)):
        result = sanitize(payload)
        assert_safe(result.html, allowed)
        if has_markup(payload):
            assert result.removed, "markup removed without a report"


# --- properties

TAG_NAMES = [
    "a", "A", "b", "p", "q", "abbr", "blockquote", "pre", "code", "ul", "li", "br", "h2",
    "script", "SCRIPT", "ScRiPt", "img", "IMG", "svg", "math", "style", "iframe", "object",
    "embed", "base", "meta", "link", "form", "input", "button", "details", "body", "html",
    "noscript", "template", "textarea", "title", "xmp", "plaintext", "mglyph", "mtext",
    "table", "select", "video", "source", "marquee", "x", "image", "annotation-xml",
]  # fmt: skip
ATTRIBUTE_NAMES = [
    "href", "HREF", "src", "cite", "title", "style", "onclick", "onerror", "ONLOAD",
    "onmouseover", "formaction", "action", "xlink:href", "srcdoc", "data", "rel", "target",
    "id", "poster", "background", "on", "o\u006eclick",
]  # fmt: skip
SCHEME_WORDS = ["javascript", "JaVaScRiPt", "vbscript", "data", "livescript", "http", "mailto"]


@st.composite
def disguised_char(draw: st.DrawFn, char: str) -> str:
    code = ord(char)
    return draw(
        st.sampled_from(
            [
                char,
                char.upper(),
                f"&#{code};",
                f"&#{code}",
                f"&#x{code:x};",
                f"&#X{code:X}",
                f"&#{code:07d};",
                char + "\t",
                char + "&#x0A;",
                char + "&Tab;",
                char + "&#0;",
                char + "\x00",
                char + "\u200b",
            ]
        )
    )


@st.composite
def disguised_urls(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(SCHEME_WORDS))
    prefix = draw(st.sampled_from(["", " ", "\t", "&#x20;", "&#14;", "\x01", "&#0;", "\n"]))
    scheme = "".join(draw(disguised_char(char)) for char in word)
    colon = draw(st.sampled_from([":", "&colon;", "&#58;", "&#x3A;", "&#x3a", ":\t"]))
    rest = draw(
        st.sampled_from(
            [
                "alert(1)",
                "123",
                "//example.com/%0Aalert(1)",
                "text/html,<script>alert(1)</script>",
                "text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
                "\\u0061lert(1)",
            ]
        )
    )
    return prefix + scheme + colon + rest


@st.composite
def attributes(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(ATTRIBUTE_NAMES))
    value = draw(
        st.one_of(
            disguised_urls(),
            st.sampled_from(["alert(1)", "x", "", "https://x.org/", '"><script>alert(1)</script>']),
            st.text(max_size=8),
        )
    )
    quote = draw(st.sampled_from(['"', "'", ""]))
    separator = draw(st.sampled_from([" ", "/", "\n", "\t", "  "]))
    return f"{separator}{name}={quote}{value}{quote}"


@st.composite
def tags(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(TAG_NAMES))
    if draw(st.booleans()):
        return f"</{name}>"
    attrs = "".join(draw(st.lists(attributes(), max_size=3)))
    return f"<{name}{attrs}{draw(st.sampled_from(['>', '/>', '', ' >']))}"


html_ish = st.lists(
    st.one_of(
        tags(),
        st.text(max_size=10),
        disguised_urls(),
        st.sampled_from(
            ["<!--", "-->", "--!>", "<![CDATA[", "]]>", "\n\n", "\n", "&lt;", "&", "<", ">"]
            + ['"', "'", "https://example.com/x", "www.x.org", "</", "<?", "<!", "&#60;"]
        ),
    ),
    max_size=14,
).map("".join)


@PROPERTY_SETTINGS
@given(st.text())
def test_any_text_comes_out_safe(text: str) -> None:
    assert_safe(sanitize_comment(text).html)


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(st.text().filter(lambda t: "<" not in t and "&" not in t))
def test_text_without_markup_keeps_its_words_and_reports_nothing(text: str) -> None:
    result = sanitize_comment(text)
    assert result.removed == ()
    assert excerpt(result.html, 10**6) == " ".join(normalize_text(text).split())


@PROPERTY_SETTINGS
@given(html_ish)
def test_generated_html_comes_out_safe(source: str) -> None:
    comment = sanitize_comment(source)
    assert_safe(comment.html)
    assert sanitize_comment(comment.html).html == comment.html


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(disguised_urls())
def test_disguised_scheme_in_href_survives_only_if_http_or_mailto(url: str) -> None:
    result = sanitize_comment(f'<a href="{url}">x</a>')
    assert_safe(result.html)
    if "href=" not in result.html:
        assert any("on <a href>" in item for item in result.removed)


# --- normalize_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("e\u0301", "\u00e9"),
        ("A\u030a", "\u00c5"),
        ("a\r\nb\rc\nd", "a\nb\nc\nd"),
        ("a\x00b", "ab"),
        ("\x01\x07\x08\x0b\x0c\x1b\x1f\x7f\x80\x85\x9f", ""),
        ("keep\ttab\nand newline", "keep\ttab\nand newline"),
        ("lone\ud800 high\udbff and low\udc00\udfff", "lone high and low"),
        ("astral \U0001f600 stays", "astral \U0001f600 stays"),
        ("\u00a0nbsp\u2028kept", "\u00a0nbsp\u2028kept"),
        ("", ""),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_normalize_text_rejects_non_text() -> None:
    with pytest.raises(InvalidText):
        normalize_text(b"bytes")  # type: ignore[arg-type]


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(st.text())
def test_normalize_text_is_idempotent_and_storable(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    once.encode("utf-8")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\r]", once)


# --- robustness


@pytest.mark.parametrize("opening", ["<b>", "<div>", "<ul><li>", "<blockquote>", "<svg>", "<q>"])
def test_deep_nesting_is_cheap_and_stable(opening: str) -> None:
    for depth in (80, 400):
        result = sanitize_comment(opening * depth + "x")
        assert_safe(result.html)
        assert sanitize_comment(result.html).html == result.html
        assert result.removed


def test_sanitizing_is_thread_safe() -> None:
    sources = [*CORPUS[:60], "a https://x.org b\n\nc"] * 3
    expected = [sanitize_comment(source) for source in sources]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(sanitize_comment, sources)) == expected


# --- count_links, link_domains, body_fingerprint, excerpt


@pytest.mark.parametrize(
    ("source", "links", "domains"),
    [
        ("no links here", 0, []),
        ("https://A.Example.COM/x", 1, ["a.example.com"]),
        (
            "https://a.example.com/x and http://b.org, https://a.example.com/y www.c.net",
            4,
            ["a.example.com", "b.org", "www.c.net"],
        ),
        ('<a href="/rel">r</a> <a href="mailto:q@r.org">m</a>', 2, []),
        ('<a href="//cdn.example.org/x">p</a>', 1, ["cdn.example.org"]),
        ('<a href="https://x.org:8080/p">p</a>', 1, ["x.org"]),
        ('<a href="javascript:alert(1)">x</a>', 0, []),
        ("<a>no href</a>", 0, []),
    ],
)
def test_count_links_and_link_domains(source: str, links: int, domains: list[str]) -> None:
    body = sanitize_comment(source).html
    assert count_links(body) == links
    assert link_domains(body) == domains


def test_link_domains_skips_unparseable_hosts() -> None:
    assert link_domains('<a href="http://[::1">x</a><a href="https://ok.org">y</a>') == ["ok.org"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Hello world", "hello   WORLD"),
        ("Hello, world!", "hello world"),
        ("<b>Hello</b> world", "Hello world"),
        ("Hello\r\n\r\nworld", "hello world"),
        ("ｈｅｌｌｏ world", "hello world"),
        ("Stra\u00dfe", "STRASSE"),
        ("caf\u00e9", "cafe\u0301"),
        ("hel\u200blo world", "hello world"),
        ("AT&amp;T rocks", "AT&T rocks"),
    ],
)
def test_fingerprint_ignores_case_spacing_punctuation_and_markup(first: str, second: str) -> None:
    assert body_fingerprint(first) == body_fingerprint(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [("hello world", "hello there"), ("buy now", "buy not"), ("1 2 3", "1 2 4"), ("", "x")],
)
def test_fingerprint_differs_for_different_words(first: str, second: str) -> None:
    assert body_fingerprint(first) != body_fingerprint(second)


def test_fingerprint_is_sha256_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", body_fingerprint("anything"))


@pytest.mark.parametrize(
    ("source", "length", "expected"),
    [
        ("Short text", 160, "Short text"),
        ("<p>a &amp; b</p>\n<p>c&lt;d</p>", 160, "a & b c<d"),
        ("Hello, world! This is a fairly long sentence", 30, "Hello, world! This is a\u2026"),
        ("one two three", 8, "one two\u2026"),
        ("one two, three", 10, "one two\u2026"),
        ("abcdefghij", 5, "abcd\u2026"),
        ("line<br>break", 160, "line break"),
        ("x" * 20, 0, ""),
    ],
)
def test_excerpt(source: str, length: int, expected: str) -> None:
    result = excerpt(sanitize_comment(source).html, length)
    assert result == expected
    assert len(result) <= max(length, 0)


def test_excerpt_default_length() -> None:
    words = " ".join(["word"] * 100)
    result = excerpt(sanitize_comment(words).html)
    assert len(result) <= 160
    assert result.endswith("word\u2026")
