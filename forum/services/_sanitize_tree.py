"""The tree half of sanitize.py (private to it): walk an html5lib fragment keeping only
allowed elements and attributes, group the text into paragraphs like wpautop, and
serialize. It takes its parser from sanitize.py, the one module that imports bleach.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pygments.token import STANDARD_TYPES


@dataclass(frozen=True)
class Policy:
    tags: frozenset[str]
    attributes: Mapping[str, frozenset[str]]


IMAGE_LOADING = (("loading", "lazy"), ("decoding", "async"))
# Highlighted code (forum.services.markdown) colours tokens with Pygments' short classes,
# styled by static/css/pygments.css; any other class is removed.
CODE_CLASSES = frozenset(STANDARD_TYPES.values()) - {""}
# Tables come from Markdown only (their own policy); a cell's alignment is a class, since
# the CSP forbids the inline style markdown-it writes.
TABLE_TAGS = frozenset({"table", "thead", "tbody", "tr", "th", "td"})
ALIGN_CLASSES = frozenset({"align-left", "align-center", "align-right"})
# Elements that hold rows or cells only: text between them is layout.
_TABLE_FRAMES = frozenset({"table", "thead", "tbody", "tr"})
URL_ATTRIBUTES = frozenset({"href", "cite"})
SCHEMES = frozenset({"http", "https", "mailto"})

# Disallowed elements whose content goes with them: code, raw text that a browser never
# shows, or foreign (SVG/MathML) subtrees where HTML-looking text parses differently.
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "template", "iframe", "frame", "frameset", "object", "embed"}
    | {"applet", "noscript", "noembed", "noframes", "svg", "math", "select", "datalist"}
    | {"head", "audio", "video", "param", "source", "track", "option", "optgroup"}
)
# Disallowed block elements still separate their text from the neighbours'.
UNWRAP_AS_BLOCK = frozenset(
    {"address", "article", "aside", "caption", "center", "dd", "details", "dialog", "dir"}
    | {"div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1"}
    | {"h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "legend", "listing", "main"}
    | {"menu", "nav", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead"}
    | {"tr", "body", "html", "plaintext", "xmp", "textarea"}
)
# Kept elements that may not sit inside <p>: a <p> opened around them would be closed early.
BLOCK = frozenset(
    {"p", "blockquote", "ul", "ol", "li", "pre", "h2", "h3", "h4", "hr", "figure", "figcaption"}
    | TABLE_TAGS
)
VOID = frozenset({"br", "hr", "img"})
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

# Control, format and separator characters: nothing a reader sees.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
CONTROLS_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SCHEME_RE = re.compile(r"([a-z][a-z0-9+.\-]*):")
_BLANK_LINE_RE = re.compile(r"[ \t]*\n[ \t]*\n[ \t\n]*")
# "</3" and "<?" open bogus comments that would silently eat the rest of a plain-text
# comment; as text they are harmless, whatever context they end up in.
_BOGUS_COMMENT_RE = re.compile(r"<(?=/[^A-Za-z]|/$|\?)")
_NEWLINE_RE = re.compile(r"[ \t]*\n[ \t]*")


@dataclass
class _Element:
    tag: str
    attrs: list[tuple[str, str]]
    children: list[_Node] = field(default_factory=list)
    block: bool = False


_Node = _Element | str


class Filter:
    """Parse like a browser, keep allowed elements and attributes, note what goes."""

    def __init__(
        self,
        policy: Policy,
        removed: dict[str, None],
        make_parser: Callable[[frozenset[str], Callable[[str], None]], Any],
    ) -> None:
        # The parser (bleach's html5lib parser, from sanitize.py) is given, not imported.
        self.policy = policy
        self.removed = removed
        self.make_parser = make_parser

    def fragment(self, text: str) -> list[_Node]:
        if _nesting_estimate(text) > _MAX_SCANNED_DEPTH:
            # html5lib's tree builder is quadratic in nesting depth; such input is an attack
            # or an accident, and as plain text it costs nothing to parse.
            self._note(f"markup nested over {_MAX_SCANNED_DEPTH} levels deep")
            text = text.replace("<", "&lt;")
        parser = self.make_parser(self.policy.tags, self._note)
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
            wrapped = flow and isinstance(child.tag, str) and child.tag not in BLOCK
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
        code_span = name != "span" or element.attrib.get("class") in CODE_CLASSES
        if not foreign and name in self.policy.tags and code_span:
            attrs = self._attributes(name, element.attrib)
            if name == "img":
                if not any(key == "src" for key, _ in attrs):
                    self._note("image without an https source")
                    return []
                return [_Element(name, attrs + list(IMAGE_LOADING))]
            children = self._children(element, depth, flow=name == "blockquote")
            if name == "a" and not any(key == "href" for key, _ in attrs):
                # A link without a target is no link: keep its text, not an empty <a>.
                return children
            if name == "p" and not any(isinstance(c, _Element) or c.strip() for c in children):
                # An empty paragraph shows nothing, and a second pass would drop it anyway.
                return []
            if name == "p" and any(isinstance(c, _Element) and c.block for c in children):
                # A block inside a paragraph (through an unwrapped <button>, say) cannot be
                # written as HTML: a browser would split it into empty paragraphs.
                return ["\n", *children, "\n"]
            block = name in BLOCK or any(
                isinstance(child, _Element) and child.block for child in children
            )
            return [_Element(name, attrs, children, block)]
        self._note(f"tag <{clip(name)}>")
        if foreign or name in _DROP_WITH_CONTENT:
            self._note_subtree(element)
            return []
        children = self._children(element, depth)
        return ["\n", *children, "\n"] if name in UNWRAP_AS_BLOCK else children

    def _note_subtree(self, element: Any) -> None:
        for inner in element.iter():
            if inner is element:
                continue
            if not isinstance(inner.tag, str):
                self._note("HTML comment")
                continue
            name = _split_tag(inner.tag)[1]
            if name not in self.policy.tags:
                self._note(f"tag <{clip(name)}>")

    def _attributes(self, tag: str, attrib: Mapping[str, str]) -> list[tuple[str, str]]:
        allowed = self.policy.attributes.get(tag, frozenset())
        kept = []
        for name, raw in attrib.items():
            if tag == "a" and name == "rel":
                continue  # every link gets our own rel, so the user's is replaced, not lost
            if tag == "img" and name in ("loading", "decoding"):
                continue  # every image gets our own, like rel on links
            if name not in allowed:
                self._note(f"attribute {clip(name)} on <{tag}>")
                continue
            value = _strip_controls(raw)
            if tag == "img" and not image_attribute_ok(name, value):
                self._note(f"{'source that is not https' if name == 'src' else name} on <img>")
                continue
            if name == "class" and not class_ok(tag, value):
                self._note(f"class {clip(value)} on <{tag}>")
                continue
            if name in URL_ATTRIBUTES:
                problem = url_problem(value)
                if problem is not None:
                    self._note(f"{problem} on <{tag} {name}>")
                    continue
            kept.append((name, value))
        return kept


def class_ok(tag: str, value: str) -> bool:
    """Classes are kept only where the stylesheet uses them: code colours, cell alignment."""
    return value in (ALIGN_CLASSES if tag in ("th", "td") else CODE_CLASSES)


def image_attribute_ok(name: str, value: str) -> bool:
    """An https source with a host, sizes in digits; alt is any text."""
    if name == "src":
        if url_problem(value) is not None or value != value.strip():
            return False
        parts = urlsplit(value)
        return parts.scheme == "https" and bool(parts.netloc) and not parts.username
    if name in ("width", "height"):
        return value.isascii() and value.isdigit() and len(value) <= 5
    return name == "alt"


def url_problem(value: str) -> str | None:
    """Say why a URL attribute value must go, or None when it is safe to keep."""
    decoded = value
    # Decoding more than a browser does can only turn more values into schemes, i.e. refuse more.
    for _ in range(4):
        once = html.unescape(decoded)
        if once == decoded:
            break
        decoded = once
    compact = "".join(ch for ch in decoded if not is_invisible(ch)).lower()
    if not compact:
        return "empty link"
    match = _SCHEME_RE.match(compact)
    if match:
        scheme = match.group(1)
        return None if scheme in SCHEMES else f"link scheme {clip(scheme)}:"
    if ":" in re.split(r"[/?#]", compact, maxsplit=1)[0]:
        return "unrecognised link"
    return None


def is_invisible(ch: str) -> bool:
    return ch <= " " or ch.isspace() or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def flow(nodes: list[_Node]) -> list[_Node]:
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
    if element.tag in _TABLE_FRAMES:
        # The parser already moved any text out of the table; what is left is white space.
        children = [child for child in element.children if isinstance(child, _Element)]
        return _Element(element.tag, element.attrs, [_block(c) for c in children], True)
    if element.tag == "blockquote":
        children = flow(element.children)
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


def serialize_top(nodes: list[_Node]) -> str:
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
    if node.tag in VOID:
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
    return CONTROLS_RE.sub("", text)


def clip(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


# What a second html5lib parse of the serialized tree would build differently from the tree
# itself (see reparses_the_same); elements outside KNOWN are not analysed and count as such.
_KNOWN = frozenset(
    {"a", "abbr", "b", "blockquote", "code", "del", "em", "i", "q", "s", "strong", "span"}
    | {"ul", "ol", "li", "pre", "p", "br", "h2", "h3", "h4", "hr", "img", "figure"}
    | {"figcaption"}
)
_HEADINGS = frozenset({"h2", "h3", "h4"})
# Start tags that close an open <p> (html5lib: "close a p element in button scope").
_CLOSES_P = BLOCK | {"figure", "figcaption"}
_SPACE = "\t\n\x0c \r"


def reparses_the_same(nodes: list[_Node]) -> bool:
    """True when html5lib, parsing serialize_top(nodes) again, builds exactly this tree: no
    element it does not know, no <a> in <a>, no <li> in <li> outside a list, no heading in
    a heading, no block in <p>, no <pre> whose text starts with the newline it drops."""
    return all(_stable(node, frozenset()) for node in nodes if isinstance(node, _Element))


def _stable(element: _Element, open_tags: frozenset[str]) -> bool:
    tag = element.tag
    if tag not in _KNOWN:
        return False
    if tag == "a" and "a" in open_tags:
        return False
    if tag == "li" and "li" in open_tags:
        return False
    if tag in _HEADINGS and open_tags & _HEADINGS:
        return False
    if tag in _CLOSES_P and "p" in open_tags:
        return False
    children = element.children
    if tag == "pre" and children and isinstance(children[0], str) and children[0][:1] == "\n":
        return False
    inner = open_tags - {"li"} if tag in ("ul", "ol") else open_tags
    inner = inner | {tag}
    return all(_stable(child, inner) for child in children if isinstance(child, _Element))


def tokens(nodes: list[_Node]) -> Iterator[dict[str, Any]]:
    """The html5lib token stream (as bleach's tree walker yields it) of serialize_top(nodes)
    parsed again, without serializing and parsing: text and attribute values come escaped,
    as bleach's parser (consume_entities=False) leaves them. Only for reparses_the_same."""
    top: list[_Node] = []
    for node in nodes:
        top += (node, "\n")
    return _tokens(top)


def _tokens(nodes: list[_Node]) -> Iterator[dict[str, Any]]:
    text: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            text.append(node)
            continue
        if text:
            yield from text_tokens(html.escape("".join(text), quote=False))
            text.clear()
        attrs = {(None, name): _escape_attribute(value) for name, value in node.attrs}
        if node.tag in VOID:
            yield {"type": "EmptyTag", "name": node.tag, "namespace": None, "data": attrs}
            continue
        yield {"type": "StartTag", "name": node.tag, "namespace": None, "data": attrs}
        yield from _tokens(node.children)
        yield {"type": "EndTag", "name": node.tag, "namespace": None}
    if text:
        yield from text_tokens(html.escape("".join(text), quote=False))


def text_tokens(data: str) -> Iterator[dict[str, Any]]:
    """One text node as html5lib's tree walker yields it: space, characters, space."""
    middle = data.lstrip(_SPACE)
    if len(middle) < len(data):
        yield {"type": "SpaceCharacters", "data": data[: len(data) - len(middle)]}
    right = middle.rstrip(_SPACE)
    if right:
        yield {"type": "Characters", "data": right}
    if len(right) < len(middle):
        yield {"type": "SpaceCharacters", "data": middle[len(right) :]}
