"""Turn user-written text into safe HTML; the only module that imports bleach."""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import bleach
from bleach.html5lib_shim import BleachHTMLParser, BleachHTMLSerializer
from bleach.html5lib_shim import Filter as _TokenFilter
from bleach.linkifier import Linker, LinkifyFilter, build_url_re
from bleach.sanitizer import BleachSanitizerFilter

from forum.services._sanitize_tree import (
    BLOCK,
    CONTROLS_RE,
    IMAGE_LOADING,
    SCHEMES,
    TABLE_TAGS,
    UNWRAP_AS_BLOCK,
    URL_ATTRIBUTES,
    VOID,
    Filter,
    Policy,
    class_ok,
    clip,
    flow,
    image_attribute_ok,
    is_invisible,
    reparses_the_same,
    serialize_top,
    text_tokens,
    tokens,
    url_problem,
)


@dataclass(frozen=True)
class SanitizeResult:
    """Safe HTML plus a plain-text report of what was taken out."""

    html: str
    removed: tuple[str, ...] = ()


class InvalidText(ValueError):
    """Input that is not text at all (str is always accepted: bad code points are stripped)."""


_COMMENT_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "code", "del", "em", "i", "q", "s", "strong"}
    | {"ul", "ol", "li", "pre", "p", "br", "span"}
)
_ATTRIBUTES: Mapping[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "span": frozenset({"class"}),
    "abbr": frozenset({"title"}),
    "blockquote": frozenset({"cite"}),
    "q": frozenset({"cite"}),
}
_COMMENT_POLICY = Policy(_COMMENT_TAGS, _ATTRIBUTES)
# Posts also keep images with an https source (lazy-loaded; the CSP allows https images),
# in a figure with its caption as WordPress writes them. Comments never get images.
_IMAGE_ATTRIBUTES = frozenset({"src", "alt", "width", "height"})
_POST_POLICY = Policy(
    _COMMENT_TAGS | {"h2", "h3", "h4", "hr", "img", "figure", "figcaption"},
    {**_ATTRIBUTES, "img": _IMAGE_ATTRIBUTES | {"loading", "decoding"}},
)
# Markdown bodies may also hold tables (GitHub's pipe tables); HTML bodies keep the
# WordPress-like allowlist they always had.
_CELL_ATTRIBUTES = {"th": frozenset({"class"}), "td": frozenset({"class"})}
_MARKDOWN_COMMENT_POLICY = Policy(_COMMENT_TAGS | TABLE_TAGS, {**_ATTRIBUTES, **_CELL_ATTRIBUTES})
_MARKDOWN_POST_POLICY = Policy(
    _POST_POLICY.tags | TABLE_TAGS, {**_POST_POLICY.attributes, **_CELL_ATTRIBUTES}
)
_REL = "nofollow ugc noopener"
_MAX_REPORT = 25
# html5lib drops a tag that the text ends inside of (bleach turns some of these back into text).
_EOF_IN_TAG = frozenset(
    {"eof-in-attribute-value-double-quote", "eof-in-attribute-value-single-quote"}
    | {"expected-attribute-name-but-got-eof", "expected-attribute-value-but-got-eof"}
    | {"unexpected-EOF-after-attribute-value", "unexpected-EOF-after-solidus-in-tag"}
    | {"eof-in-attribute-name", "eof-in-attribute-value-no-quotes", "eof-in-tag-name"}
    | {"expected-end-of-tag-but-got-eof"}
)
# Letters (category Lo/So) that fonts draw as nothing: spammers' favourite "empty" names.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_SURROGATES_RE = re.compile("[\ud800-\udfff]")
# Only http(s) URLs are linkified; the default list includes data: and others.
_LINKIFY_URL_RE = build_url_re(protocols=["http", "https"])


def normalize_text(text: str) -> str:
    """Return NFC text with \\n newlines and no NULs, control characters or lone surrogates."""
    if not isinstance(text, str):
        raise InvalidText(f"expected text, got {type(text).__name__}")
    text = _SURROGATES_RE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = CONTROLS_RE.sub("", text)
    return unicodedata.normalize("NFC", text)


def sanitize_comment(text: str, *, tables: bool = False) -> SanitizeResult:
    """Sanitize a comment body with the WordPress-like comment allowlist (plus tables, for
    rendered Markdown)."""
    return _sanitize(text, _MARKDOWN_COMMENT_POLICY if tables else _COMMENT_POLICY)


def sanitize_post(text: str, *, tables: bool = False) -> SanitizeResult:
    """Sanitize a post body: the comment allowlist plus h2-h4, hr, figures and https images
    (and tables, for rendered Markdown)."""
    return _sanitize(text, _MARKDOWN_POST_POLICY if tables else _POST_POLICY)


def is_blank(text: str) -> bool:
    """True when a reader would see nothing: only white space, control and format
    characters (Unicode Zs, Cc, Cf: zero-width spaces and joiners, U+2060, U+FEFF, bidi
    controls) and the few letters that are drawn as nothing (Hangul fillers, braille blank)."""
    return all(is_invisible(ch) or ch in _BLANK_LETTERS for ch in text)


@dataclass(frozen=True)
class HtmlFacts:
    """What the rules and the spam filter read from sanitized HTML, from one parse."""

    text: str
    hrefs: tuple[str, ...]

    @property
    def blank(self) -> bool:
        """No visible text (`<p><b></b></p>`, `&nbsp;`)."""
        return is_blank(self.text)

    @property
    def domains(self) -> list[str]:
        return _domains(self.hrefs)


def html_facts(html_text: str) -> HtmlFacts:
    """The plain text and the <a href> values of sanitized HTML (one parse for what
    `is_blank_html`, `count_links` and `link_domains` each read)."""
    parser = _Text()
    parser.feed(html_text)
    parser.close()
    return HtmlFacts("".join(parser.parts), tuple(parser.hrefs))


def is_blank_html(html_text: str) -> bool:
    """True when sanitized HTML renders no visible text (`<p><b></b></p>`, `&nbsp;`)."""
    return html_facts(html_text).blank


def count_links(html_text: str) -> int:
    """Count the <a href> elements in sanitized HTML."""
    return len(html_facts(html_text).hrefs)


def link_domains(html_text: str) -> list[str]:
    """Return the lower-cased hosts of http(s) links in sanitized HTML, first seen first."""
    return html_facts(html_text).domains


def _domains(hrefs: tuple[str, ...]) -> list[str]:
    hosts: dict[str, None] = {}
    for href in hrefs:
        try:
            parts = urlsplit(href.strip())
            host = parts.hostname
        except ValueError:
            continue
        if parts.scheme in ("http", "https", "") and host:
            hosts[host.rstrip(".")] = None
    return [host for host in hosts if host]


def body_fingerprint(text: str) -> str:
    """Return a sha256 hex digest that ignores case, markup, punctuation and spacing."""
    plain = unicodedata.normalize("NFKC", _plain_text(normalize_text(text)))
    plain = unicodedata.normalize("NFKC", plain.casefold())
    kept = plain.translate(_FINGERPRINT_CHARACTERS)
    return hashlib.sha256(" ".join(kept.split()).encode()).hexdigest()


class _FingerprintCharacters(dict[int, str]):
    """str.translate table, filled as characters are met: punctuation, symbols and format
    characters go, separators and other controls become a space, the rest stays."""

    def __missing__(self, code: int) -> str:
        category = unicodedata.category(chr(code))
        if category[0] in "PS" or category == "Cf":
            kept = ""
        else:
            kept = " " if category[0] in "ZC" else chr(code)
        if len(self) < _FINGERPRINT_CACHE:
            self[code] = kept
        return kept


# Enough for every script a forum meets; beyond it characters are looked up each time.
_FINGERPRINT_CACHE = 20_000
_FINGERPRINT_CHARACTERS = _FingerprintCharacters()


def excerpt(html_text: str, length: int = 160) -> str:
    """Return the plain text of sanitized HTML cut on a word to at most `length` characters.

    Only as much of the HTML is parsed as gives more than `length` characters of text
    (the dashboard shows two excerpts per item, and parsing whole bodies dominated it).
    """
    text = _text_beyond(html_text, length)
    if len(text) <= length:
        return text
    if length < 1:
        return ""
    cut = text[: length - 1]
    if text[length - 1] != " " and " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.!?-\u2013\u2014") + "\u2026"


def _sanitize(text: str, policy: Policy, one_parse: bool = True) -> SanitizeResult:
    removed: dict[str, None] = {}
    nodes = flow(Filter(policy, removed, _parser).fragment(normalize_text(text)))
    # The filter above already did the real work; bleach re-checks the result with its own
    # allowlist filter, so a mistake in either one alone does not reach the page.
    check = _bleach_attribute_check(policy, removed)
    if one_parse and reparses_the_same(nodes):
        # One parse: the tree's tokens go through bleach's allowlist and linkify filters,
        # exactly as they would after serializing and parsing again (reparses_the_same).
        stream = BleachSanitizerFilter(
            tokens(nodes),
            allowed_tags=policy.tags,
            attributes=check,
            allowed_protocols=SCHEMES,
            strip_disallowed_tags=True,
            strip_html_comments=True,
        )
        linked = LinkifyFilter(
            _AsReparsed(stream),
            callbacks=[_link_attributes],
            parse_email=False,
            url_re=_LINKIFY_URL_RE,
        )
        return SanitizeResult(_serializer().render(linked).strip(), _summary(removed))
    # Markup html5lib would build differently on a second parse (<a> in <a> once a <table>
    # between them is gone, say): serialize and let bleach parse it, as it will be read.
    cleaned = bleach.clean(
        serialize_top(nodes),
        tags=policy.tags,
        attributes=check,
        protocols=SCHEMES,
        strip=True,
        strip_comments=True,
    )
    # No skip_tags for <pre>/<code>: bleach 6.4 then re-escapes their entities ("&lt;" comes
    # out as "&amp;lt;", one more layer on every pass), so URLs in code get linked as well.
    linker = Linker(callbacks=[_link_attributes], parse_email=False, url_re=_LINKIFY_URL_RE)
    return SanitizeResult(linker.linkify(cleaned).strip(), _summary(removed))


# html5lib's parser and serializer keep state while they work, so like bleach's Cleaner
# they are not shared between threads; one of each per thread is cheaper than one per use
# (bench/NOTES.md, "Sanitizer: one parse").
_PER_THREAD = threading.local()


def _parser(allowed: frozenset[str], note: Callable[[str], None]) -> _Parser:
    parser = getattr(_PER_THREAD, "parser", None)
    if parser is None:
        parser = _PER_THREAD.parser = _Parser()
    parser.allowed = allowed
    parser.note = note
    return parser


def _serializer() -> BleachHTMLSerializer:
    serializer = getattr(_PER_THREAD, "serializer", None)
    if serializer is None:
        # Linker's own settings, so the output is byte for byte what bleach.linkify writes.
        serializer = _PER_THREAD.serializer = BleachHTMLSerializer(
            quote_attr_values="always",
            omit_optional_tags=False,
            resolve_entities=False,
            sanitize=False,
            alphabetical_attributes=False,
        )
    return serializer


class _AsReparsed(_TokenFilter):
    """Text tokens as bleach would see them after serializing the allowlist filter's output
    and parsing it again: entities written back, each text node one run of tokens."""

    def __iter__(self) -> Any:
        text: list[str] = []
        for token in super().__iter__():
            kind = token["type"]
            if kind == "Characters":
                text.append(_escape_text(token["data"]))
            elif kind == "SpaceCharacters":
                text.append(token["data"])
            elif kind == "Entity":
                text.append(f"&{token['name']};")
            else:
                if text:
                    yield from text_tokens("".join(text))
                    text.clear()
                yield token
        if text:
            yield from text_tokens("".join(text))


def _escape_text(data: str) -> str:
    # html5lib's serializer escapes text with xml.sax.saxutils.escape: &, < and > only.
    return data.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _summary(removed: dict[str, None]) -> tuple[str, ...]:
    # The report becomes a hold reason a moderator reads; a payload with hundreds of
    # distinct attribute names should not turn it into a wall of text.
    items = tuple(removed)
    if len(items) <= _MAX_REPORT:
        return items
    return (*items[: _MAX_REPORT - 1], f"and {len(items) - _MAX_REPORT + 1} more")


class _Parser(BleachHTMLParser):
    """bleach's html5lib parser, also reporting tags that never reach the tree."""

    def __init__(self) -> None:
        # bleach's parser is html5lib plus fixes that keep "a <b" as text instead of eating
        # it; tags=None switches its own allowlist off so the filter sees every element.
        super().__init__(tags=None, strip=False, consume_entities=True, namespaceHTMLElements=False)
        self.allowed: frozenset[str] = frozenset()
        self.note: Callable[[str], None] = _ignore

    def parseError(self, errorcode: str = "XXX-undefined-error", datavars: Any = None) -> None:
        """Report tags the tree builder ignores (<body>, stray </title>) and tags cut by EOF."""
        super().parseError(errorcode, datavars)
        name = (datavars or {}).get("name") if "-tag" in errorcode else None
        if errorcode == "non-html-root":
            name = "html"
        if isinstance(name, str) and name not in self.allowed:
            self.note(f"tag <{clip(name)}>")
        if errorcode in _EOF_IN_TAG:
            self.note("unfinished tag at the end")


def _ignore(_item: str) -> None:
    pass


def _bleach_attribute_check(
    policy: Policy, removed: dict[str, None]
) -> Callable[[str, str, str], bool]:
    def allow(tag: str, name: str, value: str) -> bool:
        if name not in policy.attributes.get(tag, frozenset()):
            removed[f"attribute {clip(name)} on <{tag}>"] = None
            return False
        if tag == "img" and name in ("loading", "decoding"):
            return dict(IMAGE_LOADING)[name] == value
        if tag == "img" and not image_attribute_ok(name, value):
            removed[f"{name} on <img>"] = None
            return False
        if name == "class" and not class_ok(tag, value):
            removed[f"class {clip(value)} on <{tag}>"] = None
            return False
        if name in URL_ATTRIBUTES:
            problem = url_problem(value)
            if problem is not None:
                removed[f"{problem} on <{tag} {name}>"] = None
                return False
        return True

    return allow


def _link_attributes(attrs: dict[Any, str], new: bool = False) -> dict[Any, str] | None:
    href_key = (None, "href")
    href = attrs.get(href_key)
    if href is None or url_problem(href) is not None:
        return None  # linkify then keeps the text without the <a>
    for key in list(attrs):
        if key not in ("_text", href_key, (None, "title")):
            del attrs[key]
    attrs[(None, "rel")] = _REL
    return attrs


_TEXT_BREAKS = BLOCK | VOID | UNWRAP_AS_BLOCK


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hrefs: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href is not None:
                self.hrefs.append(href)
        if tag in ("script", "style"):
            self.hidden += 1
        elif tag in _TEXT_BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.hidden = max(0, self.hidden - 1)
        elif tag in _TEXT_BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _text_beyond(html_text: str, length: int) -> str:
    """The plain text, spaces collapsed, of as much of the HTML as gives more than
    `length` characters, or all of it: a prefix of the whole text's, long enough that
    cutting it to `length` gives what cutting the whole text would."""
    step = 2 * length + 64
    if len(html_text) <= step:
        return " ".join(_plain_text(html_text).split())
    parser = _Text()
    for start in range(0, len(html_text), step):
        parser.feed(html_text[start : start + step])
        text = " ".join("".join(parser.parts).split())
        if len(text) > length:
            return text
    parser.close()
    return " ".join("".join(parser.parts).split())


def _plain_text(html_text: str) -> str:
    parser = _Text()
    parser.feed(html_text)
    parser.close()
    return "".join(parser.parts)
