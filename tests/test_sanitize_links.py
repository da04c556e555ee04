"""Sanitizer: links made, kept, dropped and counted; entities in code."""

from __future__ import annotations

import pytest

from forum.services.sanitize import (
    SanitizeResult,
    count_links,
    link_domains,
    sanitize_comment,
)
from tests.helpers import REL

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


# --- count_links, link_domains


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
