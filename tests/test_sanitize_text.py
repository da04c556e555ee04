"""Sanitizer: paragraphs, the XSS corpus, properties, robustness and the text helpers
(normalize_text, body_fingerprint, excerpt)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forum.services.sanitize import (
    InvalidText,
    body_fingerprint,
    excerpt,
    normalize_text,
    sanitize_comment,
    sanitize_post,
)
from tests.helpers import COMMENT_TAGS, POST_TAGS, assert_safe

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


# --- body_fingerprint, excerpt


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
