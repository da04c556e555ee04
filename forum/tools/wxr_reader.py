"""Reading a WXR file as a stream: expat in chunks, DTDs and entities refused, and only
the channel header and the current <item> or <wp:author> held in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.parsers import expat

CHUNK_BYTES = 64 * 1024

_WP_NS = ("http://wordpress.org/export/", "https://wordpress.org/export/")
_NAMESPACES = {
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://wellformedweb.org/CommentAPI/": "wfw",
}


class WXRError(Exception):
    """The file cannot be imported; `line` says where (None when it is the whole file)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class Element:
    """An XML element with the line it starts on; text is the joined character data."""

    tag: str
    line: int
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def find(self, tag: str) -> Element | None:
        return next((child for child in self.children if child.tag == tag), None)

    def findall(self, tag: str) -> list[Element]:
        return [child for child in self.children if child.tag == tag]

    def findtext(self, tag: str) -> str:
        child = self.find(tag)
        return child.text if child is not None else ""


class StreamReader:
    """expat over a file in chunks, with every DTD and entity declaration refused (a
    billion laughs or an external entity never gets a chance). Subclasses handle the
    elements and queue in `_ready` what is complete; `read` hands it over as it goes."""

    error: type[Exception] = Exception  # raised as error(line, message)
    refused: str = "refused for safety"

    def __init__(self) -> None:
        self._stack: list[Element] = []
        self._ready: list = []
        self._parser = expat.ParserCreate(namespace_separator=" ")
        parser = self._parser
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._forbid
        parser.EntityDeclHandler = self._forbid
        parser.UnparsedEntityDeclHandler = self._forbid
        parser.ExternalEntityRefHandler = self._forbid
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._data

    def read(self, stream: BinaryIO, progress: Callable[[int], None] | None = None) -> Iterator:
        while True:
            chunk = stream.read(CHUNK_BYTES)
            try:
                self._parser.Parse(chunk, not chunk)
            except expat.ExpatError as error:
                raise self.error(
                    error.lineno, f"malformed XML: {expat.ErrorString(error.code)}"
                ) from None
            ready, self._ready = self._ready, []
            yield from ready
            if progress is not None and chunk:
                progress(len(chunk))
            if not chunk:
                return

    def _forbid(self, *_args: object) -> None:
        raise self.error(
            self._parser.CurrentLineNumber, f"a DTD or entity declaration: {self.refused}"
        )


class WXRReader(StreamReader):
    """Stream a WXR file as ("author", element) and ("item", element) events.

    Channel-level elements without children (title, link, wp:base_site_url, ...) are
    collected in `header` as (text, line); categories and terms are dropped.
    `wordpress` tells whether any element of the WordPress namespace was read yet.
    """

    error = WXRError
    refused = "not in WordPress exports, and refused for safety"

    def __init__(self) -> None:
        super().__init__()
        self.header: dict[str, tuple[str, int]] = {}
        self.wordpress = False

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        line = self._parser.CurrentLineNumber
        tag = _tag(name)
        depth = len(self._stack)
        if depth == 0 and tag != "rss":
            raise WXRError(line, f"not a WordPress export: the root is <{tag}>, not <rss>")
        if depth == 1 and tag != "channel":
            raise WXRError(line, f"unexpected <{tag}> outside <channel>")
        if tag.startswith("wp:"):
            self.wordpress = True
        element = Element(tag, line, {_tag(k): v for k, v in attrs.items()})
        if depth > 2:
            self._stack[-1].children.append(element)
        self._stack.append(element)

    def _end(self, _name: str) -> None:
        element = self._stack.pop()
        if len(self._stack) != 2:
            return
        if element.tag == "item":
            self._ready.append(("item", element))
        elif element.tag == "wp:author":
            self._ready.append(("author", element))
        elif not element.children and element.tag not in self.header:
            self.header[element.tag] = (element.text.strip(), element.line)

    def _data(self, text: str) -> None:
        if len(self._stack) > 2:
            self._stack[-1].parts.append(text)


def _tag(name: str) -> str:
    """'http://wordpress.org/export/1.2/ comment' -> 'wp:comment'; no namespace: as is.

    Both spellings of the WordPress namespace (http and https) are the same namespace.
    """
    namespace, _, local = name.rpartition(" ")
    if not namespace:
        return local
    if namespace.startswith(_WP_NS):
        return f"excerpt:{local}" if namespace.rstrip("/").endswith("/excerpt") else f"wp:{local}"
    prefix = _NAMESPACES.get(namespace)
    return f"{prefix}:{local}" if prefix else f"{{{namespace}}}{local}"
