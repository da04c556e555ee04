"""The sanitizer's one parse gives the bytes and the report of serializing its tree and
letting bleach parse it again (clean, then linkify), the way it worked before."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from forum.services import _sanitize_tree, sanitize
from tests.test_sanitize_text import CORPUS, PROPERTY_SETTINGS, html_ish

POLICIES = [sanitize._COMMENT_POLICY, sanitize._POST_POLICY]

# Trees html5lib builds differently when it parses their serialization again.
REBUILT = [
    '<a href="https://a.example/"><table><tr><td><a href="https://b.example/">x</a></td></tr></table></a>',
    "<ul><li>one<section><li>two</li></section></li></ul>",
    "<pre>\n\nindented\n</pre>",
    "<h2>title<div><h3>sub</h3></div></h2>",
]


def both_ways(text: str, policy: _sanitize_tree.Policy) -> None:
    one = sanitize._sanitize(text, policy)
    reparsed = sanitize._sanitize(text, policy, one_parse=False)
    assert (one.html, one.removed) == (reparsed.html, reparsed.removed)


@pytest.mark.parametrize("policy", POLICIES, ids=["comment", "post"])
def test_corpus_one_parse_equals_parsing_again(policy) -> None:
    for text in [*CORPUS, *REBUILT, "see https://x.example/a?b=1&c=2 &amp; <q>www.y.org</q>"]:
        both_ways(text, policy)


@pytest.mark.parametrize("text", REBUILT)
def test_trees_html5lib_would_rebuild_are_recognised(text: str) -> None:
    nodes = _sanitize_tree.flow(
        _sanitize_tree.Filter(sanitize._POST_POLICY, {}, sanitize._parser).fragment(text)
    )
    assert not _sanitize_tree.reparses_the_same(nodes)


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(html_ish)
def test_generated_html_one_parse_equals_parsing_again(source: str) -> None:
    for policy in POLICIES:
        both_ways(source, policy)
