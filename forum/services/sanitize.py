"""Turn user-written text into safe HTML; the only module that imports bleach."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import bleach
from bleach.html5lib_shim import BleachHTMLParser
from bleach.linkifier import Linker, build_url_re
from pygments.token import STANDARD_TYPES


@dataclass(frozen=True)
class SanitizeResult:
    """Safe HTML plus a plain-text report of what was taken out."""

    html: str
    removed: tuple[str, ...] = ()


class InvalidText(ValueError):
    """Input that is not text at all (str is always accepted: bad code points are stripped)."""


@dataclass(frozen=True)
class _Policy:
    tags: frozenset[str]
    attributes: Mapping[str, frozenset[str]]


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
_COMMENT_POLICY = _Policy(_COMMENT_TAGS, _ATTRIBUTES)
# Posts also keep images with an https source (lazy-loaded; the CSP allows https images),
# in a figure with its caption as WordPress writes them. Comments never get images.
_IMAGE_ATTRIBUTES = frozenset({"src", "alt", "width", "height"})
_POST_POLICY = _Policy(
    _COMMENT_TAGS | {"h2", "h3", "h4", "hr", "img", "figure", "figcaption"},
    {**_ATTRIBUTES, "img": _IMAGE_ATTRIBUTES | {"loading", "decoding"}},
)
_IMAGE_LOADING = (("loading", "lazy"), ("decoding", "async"))

# Highlighted code (forum.services.markdown) colours tokens with Pygments' short classes,
# styled by static/css/pygments.css; any other class is removed.
_CODE_CLASSES = frozenset(STANDARD_TYPES.values()) - {""}

_URL_ATTRIBUTES = frozenset({"href", "cite"})
_SCHEMES = frozenset({"http", "https", "mailto"})
_REL = "nofollow ugc noopener"
_MAX_REPORT = 25

# Disallowed elements whose content goes with them: code, raw text that a browser never
# shows, or foreign (SVG/MathML) subtrees where HTML-looking text parses differently.
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "template", "iframe", "frame", "frameset", "object", "embed"}
    | {"applet", "noscript", "noembed", "noframes", "svg", "math", "select", "datalist"}
    | {"head", "audio", "video", "param", "source", "track", "option", "optgroup"}
)
# Disallowed block elements still separate their text from the neighbours'.
_UNWRAP_AS_BLOCK = frozenset(
    {"address", "article", "aside", "caption", "center", "dd", "details", "dialog", "dir"}
    | {"div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1"}
    | {"h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "legend", "listing", "main"}
    | {"menu", "nav", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead"}
    | {"tr", "body", "html", "plaintext", "xmp", "textarea"}
)
# Kept elements that may not sit inside <p>: a <p> opened around them would be closed early.
_BLOCK = frozenset(
    {"p", "blockquote", "ul", "ol", "li", "pre", "h2", "h3", "h4", "hr", "figure", "figcaption"}
)
_VOID = frozenset({"br", "hr", "img"})
# html5lib drops a tag that the text ends inside of (bleach turns some of these back into text).
_EOF_IN_TAG = frozenset(
    {"eof-in-attribute-value-double-quote", "eof-in-attribute-value-single-quote"}
    | {"expected-attribute-name-but-got-eof", "expected-attribute-value-but-got-eof"}
    | {"unexpected-EOF-after-attribute-value", "unexpected-EOF-after-solidus-in-tag"}
    | {"eof-in-attribute-name", "eof-in-attribute-value-no-quotes", "eof-in-tag-name"}
    | {"expected-end-of-tag-but-got-eof"}
)
# Deeper input is flattened to text so every later walk stays far from the recursion limit.
_MAX_DEPTH = 64

# A cheap upper bound of the parser's nesting, checked before html5lib sees the text.
_MAX_SCANNED_DEPTH = 256
_TAG_RE = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")
# Void elements never nest; these close their open namesakes instead of nesting.
_NON_NESTING = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "image", "input", "keygen", "link"}
    | {"meta", "param", "source", "track", "wbr", "p", "li", "dt", "dd", "option", "tr", "td"}
    | {"th", "thead", "tbody", "tfoot", "colgroup", "caption", "rb", "rp", "rt", "rtc"}
    | {"html", "head", "body"}
)

# Letters (category Lo/So) that fonts draw as nothing: spammers' favourite "empty" names.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_SURROGATES_RE = re.compile("[\ud800-\udfff]")
_CONTROLS_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SCHEME_RE = re.compile(r"([a-z][a-z0-9+.\-]*):")
_BLANK_LINE_RE = re.compile(r"[ \t]*\n[ \t]*\n[ \t\n]*")
# "</3" and "<?" open bogus comments that would silently eat the rest of a plain-text
# comment; as text they are harmless, whatever context they end up in.
_BOGUS_COMMENT_RE = re.compile(r"<(?=/[^A-Za-z]|/$|\?)")
_NEWLINE_RE = re.compile(r"[ \t]*\n[ \t]*")
# Only http(s) URLs are linkified; the default list includes data: and others.
_LINKIFY_URL_RE = build_url_re(protocols=["http", "https"])


def normalize_text(text: str) -> str:
    """Return NFC text with \\n newlines and no NULs, control characters or lone surrogates."""
    if not isinstance(text, str):
        raise InvalidText(f"expected text, got {type(text).__name__}")
    text = _SURROGATES_RE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROLS_RE.sub("", text)
    return unicodedata.normalize("NFC", text)


def sanitize_comment(text: str) -> SanitizeResult:
    """Sanitize a comment body with the WordPress-like comment allowlist."""
    return _sanitize(text, _COMMENT_POLICY)


def sanitize_post(text: str) -> SanitizeResult:
    """Sanitize a post body: the comment allowlist plus h2-h4, hr, figures and https images."""
    return _sanitize(text, _POST_POLICY)


def is_blank(text: str) -> bool:
    """True when a reader would see nothing: only white space, control and format
    characters (Unicode Zs, Cc, Cf: zero-width spaces and joiners, U+2060, U+FEFF, bidi
    controls) and the few letters that are drawn as nothing (Hangul fillers, braille blank)."""
    return all(_is_invisible(ch) or ch in _BLANK_LETTERS for ch in text)


def is_blank_html(html_text: str) -> bool:
    """True when sanitized HTML renders no visible text (`<p><b></b></p>`, `&nbsp;`)."""
    return is_blank(_plain_text(html_text))


def count_links(html_text: str) -> int:
    """Count the <a href> elements in sanitized HTML."""
    return len(_hrefs(html_text))


def link_domains(html_text: str) -> list[str]:
    """Return the lower-cased hosts of http(s) links in sanitized HTML, first seen first."""
    hosts: dict[str, None] = {}
    for href in _hrefs(html_text):
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
    kept = []
    for ch in plain:
        category = unicodedata.category(ch)
        if category[0] in "PS" or category == "Cf":
            continue
        kept.append(" " if category[0] in "ZC" else ch)
    return hashlib.sha256(" ".join("".join(kept).split()).encode()).hexdigest()


def excerpt(html_text: str, length: int = 160) -> str:
    """Return the plain text of sanitized HTML cut on a word to at most `length` characters."""
    text = " ".join(_plain_text(html_text).split())
    if len(text) <= length:
        return text
    if length < 1:
        return ""
    cut = text[: length - 1]
    if text[length - 1] != " " and " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.!?-\u2013\u2014") + "\u2026"


@dataclass
class _Element:
    tag: str
    attrs: list[tuple[str, str]]
    children: list[_Node] = field(default_factory=list)
    block: bool = False


_Node = _Element | str


def _sanitize(text: str, policy: _Policy) -> SanitizeResult:
    removed: dict[str, None] = {}
    nodes = _Filter(policy, removed).fragment(normalize_text(text))
    markup = _serialize_top(_flow(nodes))
    # The filter above already did the real work; bleach re-checks its output on its own
    # parse, so a mistake in either one alone does not reach the page.
    cleaned = bleach.clean(
        markup,
        tags=policy.tags,
        attributes=_bleach_attribute_check(policy, removed),
        protocols=_SCHEMES,
        strip=True,
        strip_comments=True,
    )
    # No skip_tags for <pre>/<code>: bleach 6.4 then re-escapes their entities ("&lt;" comes
    # out as "&amp;lt;", one more layer on every pass), so URLs in code get linked as well.
    linker = Linker(callbacks=[_link_attributes], parse_email=False, url_re=_LINKIFY_URL_RE)
    return SanitizeResult(linker.linkify(cleaned).strip(), _summary(removed))


def _summary(removed: dict[str, None]) -> tuple[str, ...]:
    # The report becomes a hold reason a moderator reads; a payload with hundreds of
    # distinct attribute names should not turn it into a wall of text.
    items = tuple(removed)
    if len(items) <= _MAX_REPORT:
        return items
    return (*items[: _MAX_REPORT - 1], f"and {len(items) - _MAX_REPORT + 1} more")


class _Parser(BleachHTMLParser):
    """bleach's html5lib parser, also reporting tags that never reach the tree."""

    def __init__(self, allowed: frozenset[str], note: Callable[[str], None]) -> None:
        # bleach's parser is html5lib plus fixes that keep "a <b" as text instead of eating
        # it; tags=None switches its own allowlist off so the filter sees every element.
        super().__init__(tags=None, strip=False, consume_entities=True, namespaceHTMLElements=False)
        self.allowed = allowed
        self.note = note

    def parseError(self, errorcode: str = "XXX-undefined-error", datavars: Any = None) -> None:
        """Report tags the tree builder ignores (<body>, stray </title>) and tags cut by EOF."""
        super().parseError(errorcode, datavars)
        name = (datavars or {}).get("name") if "-tag" in errorcode else None
        if errorcode == "non-html-root":
            name = "html"
        if isinstance(name, str) and name not in self.allowed:
            self.note(f"tag <{_clip(name)}>")
        if errorcode in _EOF_IN_TAG:
            self.note("unfinished tag at the end")


class _Filter:
    """Parse like a browser, keep allowed elements and attributes, note what goes."""

    def __init__(self, policy: _Policy, removed: dict[str, None]) -> None:
        self.policy = policy
        self.removed = removed

    def fragment(self, text: str) -> list[_Node]:
        if _nesting_estimate(text) > _MAX_SCANNED_DEPTH:
            # html5lib's tree builder is quadratic in nesting depth; such input is an attack
            # or an accident, and as plain text it costs nothing to parse.
            self._note(f"markup nested over {_MAX_SCANNED_DEPTH} levels deep")
            text = text.replace("<", "&lt;")
        parser = _Parser(self.policy.tags, self._note)
        root = parser.parseFragment(_BOGUS_COMMENT_RE.sub("&lt;", text))
        return self._children(root, 0, flow=True)

    def _note(self, item: str) -> None:
        self.removed[item] = None

    def _children(self, element: Any, depth: int, flow: bool = False) -> list[_Node]:
        nodes: list[_Node] = []
        if element.text:
            nodes.append(_strip_controls(element.text))
        for child in element:
            # Inline children of a flow container get wrapped in <p>: count that level now
            # so that sanitizing the output again flattens nothing more.
            wrapped = flow and isinstance(child.tag, str) and child.tag not in _BLOCK
            nodes.extend(self._node(child, depth + 1 + wrapped))
            if child.tail:
                nodes.append(_strip_controls(child.tail))
        return _merge_text(nodes)

    def _node(self, element: Any, depth: int) -> list[_Node]:
        if not isinstance(element.tag, str):
            self._note("HTML comment")
            return []
        foreign, name = _split_tag(element.tag)
        if depth > _MAX_DEPTH:
            self._note(f"markup nested over {_MAX_DEPTH} levels deep")
            return [_strip_controls("".join(element.itertext()))]
        # A span is only kept to colour highlighted code; any other is unwrapped as before.
        code_span = name != "span" or element.attrib.get("class") in _CODE_CLASSES
        if not foreign and name in self.policy.tags and code_span:
            attrs = self._attributes(name, element.attrib)
            if name == "img":
                if not any(key == "src" for key, _ in attrs):
                    self._note("image without an https source")
                    return []
                return [_Element(name, attrs + list(_IMAGE_LOADING))]
            children = self._children(element, depth, flow=name == "blockquote")
            if name == "a" and not any(key == "href" for key, _ in attrs):
                # A link without a target is no link: keep its text, not an empty <a>.
                return children
            block = name in _BLOCK or any(
                isinstance(child, _Element) and child.block for child in children
            )
            return [_Element(name, attrs, children, block)]
        self._note(f"tag <{_clip(name)}>")
        if foreign or name in _DROP_WITH_CONTENT:
            self._note_subtree(element)
            return []
        children = self._children(element, depth)
        return ["\n", *children, "\n"] if name in _UNWRAP_AS_BLOCK else children

    def _note_subtree(self, element: Any) -> None:
        for inner in element.iter():
            if inner is element:
                continue
            if not isinstance(inner.tag, str):
                self._note("HTML comment")
                continue
            name = _split_tag(inner.tag)[1]
            if name not in self.policy.tags:
                self._note(f"tag <{_clip(name)}>")

    def _attributes(self, tag: str, attrib: Mapping[str, str]) -> list[tuple[str, str]]:
        allowed = self.policy.attributes.get(tag, frozenset())
        kept = []
        for name, raw in attrib.items():
            if tag == "a" and name == "rel":
                continue  # every link gets our own rel, so the user's is replaced, not lost
            if tag == "img" and name in ("loading", "decoding"):
                continue  # every image gets our own, like rel on links
            if name not in allowed:
                self._note(f"attribute {_clip(name)} on <{tag}>")
                continue
            value = _strip_controls(raw)
            if tag == "img" and not _image_attribute_ok(name, value):
                self._note(f"{'source that is not https' if name == 'src' else name} on <img>")
                continue
            if name == "class" and value not in _CODE_CLASSES:
                self._note(f"class {_clip(value)} on <{tag}>")
                continue
            if name in _URL_ATTRIBUTES:
                problem = _url_problem(value)
                if problem is not None:
                    self._note(f"{problem} on <{tag} {name}>")
                    continue
            kept.append((name, value))
        return kept


def _bleach_attribute_check(
    policy: _Policy, removed: dict[str, None]
) -> Callable[[str, str, str], bool]:
    def allow(tag: str, name: str, value: str) -> bool:
        if name not in policy.attributes.get(tag, frozenset()):
            removed[f"attribute {_clip(name)} on <{tag}>"] = None
            return False
        if tag == "img" and name in ("loading", "decoding"):
            return dict(_IMAGE_LOADING)[name] == value
        if tag == "img" and not _image_attribute_ok(name, value):
            removed[f"{name} on <img>"] = None
            return False
        if name == "class" and value not in _CODE_CLASSES:
            removed[f"class {_clip(value)} on <{tag}>"] = None
            return False
        if name in _URL_ATTRIBUTES:
            problem = _url_problem(value)
            if problem is not None:
                removed[f"{problem} on <{tag} {name}>"] = None
                return False
        return True

    return allow


def _link_attributes(attrs: dict[Any, str], new: bool = False) -> dict[Any, str] | None:
    href_key = (None, "href")
    href = attrs.get(href_key)
    if href is None or _url_problem(href) is not None:
        return None  # linkify then keeps the text without the <a>
    for key in list(attrs):
        if key not in ("_text", href_key, (None, "title")):
            del attrs[key]
    attrs[(None, "rel")] = _REL
    return attrs


def _image_attribute_ok(name: str, value: str) -> bool:
    """An https source with a host, sizes in digits; alt is any text."""
    if name == "src":
        if _url_problem(value) is not None or value != value.strip():
            return False
        parts = urlsplit(value)
        return parts.scheme == "https" and bool(parts.netloc) and not parts.username
    if name in ("width", "height"):
        return value.isascii() and value.isdigit() and len(value) <= 5
    return name == "alt"


def _url_problem(value: str) -> str | None:
    """Say why a URL attribute value must go, or None when it is safe to keep."""
    decoded = value
    # Decoding more than a browser does can only turn more values into schemes, i.e. refuse more.
    for _ in range(4):
        once = html.unescape(decoded)
        if once == decoded:
            break
        decoded = once
    compact = "".join(ch for ch in decoded if not _is_invisible(ch)).lower()
    if not compact:
        return "empty link"
    match = _SCHEME_RE.match(compact)
    if match:
        scheme = match.group(1)
        return None if scheme in _SCHEMES else f"link scheme {_clip(scheme)}:"
    if ":" in re.split(r"[/?#]", compact, maxsplit=1)[0]:
        return "unrecognised link"
    return None


def _is_invisible(ch: str) -> bool:
    return ch <= " " or ch.isspace() or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def _flow(nodes: list[_Node]) -> list[_Node]:
    """Group inline content into <p> on blank lines, like wpautop; used at top level."""
    out: list[_Node] = []
    paragraph: list[_Node] = []

    def close() -> None:
        items = _trim(paragraph)
        if items:
            out.append(_Element("p", [], _inline_children(items)))
        paragraph.clear()

    for node in nodes:
        if isinstance(node, str):
            for index, part in enumerate(_BLANK_LINE_RE.split(node)):
                if index:
                    close()
                if part:
                    paragraph.append(part)
        elif node.block:
            close()
            block = _block(node)
            if block.tag != "p" or block.children:
                out.append(block)
        else:
            paragraph.append(node)
    close()
    return out


def _block(element: _Element) -> _Element:
    if element.tag in ("pre", "hr"):
        return element
    if element.tag == "blockquote":
        children = _flow(element.children)
    else:
        children = _inline_children(_trim(element.children))
    return _Element(element.tag, element.attrs, children, element.block)


def _inline_children(nodes: list[_Node]) -> list[_Node]:
    """Turn newlines into <br>, except next to blocks where they are only layout."""
    out: list[_Node] = []
    for index, node in enumerate(nodes):
        if isinstance(node, _Element):
            out.append(_block(node) if node.block else _inline(node))
            continue
        before = nodes[index - 1] if index else None
        after = nodes[index + 1] if index + 1 < len(nodes) else None
        if isinstance(before, _Element) and before.block:
            node = node.lstrip()
        if isinstance(after, _Element) and after.block:
            node = node.rstrip()
        for part_index, part in enumerate(_NEWLINE_RE.split(node)):
            if part_index:
                out.append(_Element("br", []))
            if part:
                out.append(part)
    return out


def _inline(element: _Element) -> _Element:
    return _Element(element.tag, element.attrs, _inline_children(element.children))


def _trim(nodes: list[_Node]) -> list[_Node]:
    items = list(nodes)
    while items and isinstance(items[0], str) and not items[0].strip():
        items.pop(0)
    while items and isinstance(items[-1], str) and not items[-1].strip():
        items.pop()
    if items and isinstance(items[0], str):
        items[0] = items[0].lstrip()
    if items and isinstance(items[-1], str):
        items[-1] = items[-1].rstrip()
    return items


def _serialize_top(nodes: list[_Node]) -> str:
    parts: list[str] = []
    for node in nodes:
        _serialize(node, parts)
        parts.append("\n")
    return "".join(parts)


def _serialize(node: _Node, parts: list[str]) -> None:
    if isinstance(node, str):
        parts.append(html.escape(node, quote=False))
        return
    # Same escaping as bleach's serializer (no &#x27;), so a second pass changes nothing.
    attrs = "".join(f' {name}="{_escape_attribute(value)}"' for name, value in node.attrs)
    parts.append(f"<{node.tag}{attrs}>")
    if node.tag in _VOID:
        return
    for child in node.children:
        _serialize(child, parts)
    parts.append(f"</{node.tag}>")


def _nesting_estimate(text: str) -> int:
    """Return how deep start tags could nest; end tags only count against open namesakes."""
    depth = deepest = 0
    open_names: dict[str, int] = {}
    for closing, raw_name in _TAG_RE.findall(text):
        name = raw_name.lower()
        if name in _NON_NESTING:
            continue
        if not closing:
            open_names[name] = open_names.get(name, 0) + 1
            depth += 1
            deepest = max(deepest, depth)
        elif open_names.get(name):
            open_names[name] -= 1
            depth -= 1
    return deepest


def _merge_text(nodes: list[_Node]) -> list[_Node]:
    merged: list[_Node] = []
    for node in nodes:
        if isinstance(node, str) and merged and isinstance(merged[-1], str):
            merged[-1] += node
        elif node != "":
            merged.append(node)
    return merged


def _escape_attribute(value: str) -> str:
    return html.escape(value, quote=False).replace('"', "&quot;")


def _split_tag(tag: str) -> tuple[bool, str]:
    """Return (is foreign, local name) for an html5lib etree tag like '{ns}svg'."""
    if tag.startswith("{"):
        return True, tag.rpartition("}")[2]
    return False, tag


def _strip_controls(text: str) -> str:
    # Entity references like &#1; decode to control characters after normalize_text ran.
    return _CONTROLS_RE.sub("", text)


def _clip(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href is not None:
                self.hrefs.append(href)

    handle_startendtag = handle_starttag


def _hrefs(html_text: str) -> list[str]:
    parser = _Links()
    parser.feed(html_text)
    parser.close()
    return parser.hrefs


_TEXT_BREAKS = _BLOCK | _VOID | _UNWRAP_AS_BLOCK


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
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


def _plain_text(html_text: str) -> str:
    parser = _Text()
    parser.feed(html_text)
    parser.close()
    return "".join(parser.parts)
