"""Turn a body in its format into safe HTML: Markdown is rendered, then always sanitized."""

from __future__ import annotations

import enum
import html
import re
import threading

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

from forum.models import BodyFormat
from forum.services import sanitize

# markdown-it ends each block tag with a newline. To the sanitizer a newline is a <br>, and
# around blocks it is layout only -- except where emphasis left open in one paragraph
# (`<em>a *b</p>`) is carried on by the browser's parser: there it would make a line break.
_BLOCK_NEWLINE_RE = re.compile(
    r"(</(?:p|blockquote|ul|ol|li|pre|h[1-6]|table|thead|tbody|tr|th|td)>"
    r"|<(?:ul|ol|blockquote|hr /)>|<hr>|<ol start=\"\d+\">)\n"
)
# Highlighted tokens per body (see _Highlighter).
_SPAN_BUDGET = 300


class Kind(enum.StrEnum):
    """Which allowlist a body gets: comments never get images or headings."""

    COMMENT = "comment"
    POST = "post"


def render(source: str, body_format: BodyFormat, kind: Kind) -> sanitize.SanitizeResult:
    """Safe HTML for a body: Markdown rendered first, then the sanitizer, the one gate."""
    clean = sanitize.sanitize_post if kind is Kind.POST else sanitize.sanitize_comment
    if body_format is BodyFormat.MARKDOWN:
        md = _parser(kind)
        md.options["highlight"] = _Highlighter()  # a fresh span budget for each body
        rendered = md.render(sanitize.normalize_text(source))
        return clean(_BLOCK_NEWLINE_RE.sub(r"\1", rendered), tables=True)
    return clean(source)


# One parser per kind and thread, built on first use (building one costs about as much as
# rendering a short comment). Parsing and rendering keep their state in per-call objects;
# the one stateful part, the highlighter's span budget, is replaced before each render.
_parsers = threading.local()


def _parser(kind: Kind) -> MarkdownIt:
    parsers = _parsers.__dict__
    md = parsers.get(kind)
    if md is None:
        md = parsers[kind] = _markdown(kind)
    return md


def _markdown(kind: Kind) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "highlight": _Highlighter()})
    if kind is Kind.COMMENT:
        # What the comment allowlist would strip (and hold the comment for) stays text.
        md.disable(["heading", "lheading", "hr", "image"])
    md.core.ruler.push("allowed_markup", _allowed_markup)
    md.enable(["strikethrough", "table"])
    # A hard break ("\\" or two spaces at the end of a line) is a <br> without the newline
    # after it, which the sanitizer would turn into a second <br>.
    md.add_render_rule("hardbreak", lambda *_args: "<br>")
    return md


def _allowed_markup(state: StateCore) -> None:
    """Post headings start at <h2> (the post's title is the <h1>); lists count from 1; a
    table cell's alignment is a class (the CSP forbids the inline style it comes as)."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 4)}"
        elif token.type == "ordered_list_open":
            token.attrs.pop("start", None)
        elif token.type in ("th_open", "td_open"):
            style = str(token.attrs.pop("style", ""))
            if style.startswith("text-align:"):
                token.attrs["class"] = "align-" + style.removeprefix("text-align:")


class _Highlighter:
    """Fenced blocks as <pre><code>, tokens the stylesheet colours in <span class="...">.

    Every span costs the sanitizer parsing work (about a millisecond each), so only
    coloured tokens get one, and one body gets at most _SPAN_BUDGET spans: a block that
    would go over is shown plain.
    """

    def __init__(self) -> None:
        self.spans = _SPAN_BUDGET

    def __call__(self, code: str, language: str, _attrs: str) -> str:
        lexer = None
        if language and len(code) <= self.spans * 40:
            try:
                lexer = get_lexer_by_name(language.split()[0], stripnl=False, ensurenl=False)
            except ClassNotFound:
                lexer = None
        if lexer is None:
            return f"<pre><code>{html.escape(code, quote=False)}</code></pre>"
        runs: list[list[str]] = []  # [class, text]: neighbours of one class merged
        for token_type, value in lexer.get_tokens(code):
            css = token_class(token_type) if value.strip() else ""
            if runs and runs[-1][0] == css:
                runs[-1][1] += value
            else:
                runs.append([css, value])
        coloured = sum(1 for css, _ in runs if css)
        if coloured > self.spans:
            return f"<pre><code>{html.escape(code, quote=False)}</code></pre>"
        self.spans -= coloured
        parts = [
            f'<span class="{css}">{html.escape(text, quote=False)}</span>'
            if css
            else html.escape(text, quote=False)
            for css, text in runs
        ]
        return f"<pre><code>{''.join(parts)}</code></pre>"


def token_class(token_type: _TokenType) -> str:
    """The class of the nearest token type the stylesheet colours (itself or an ancestor)."""
    while token_type is not None:
        css = STANDARD_TYPES.get(token_type)
        if css in _STYLED_CLASSES:
            return css
        token_type = token_type.parent
    return ""


def pygments_css() -> str:
    """The colours of highlighted code, as shipped in static/css/pygments.css."""
    from pygments.formatters import HtmlFormatter

    rules = HtmlFormatter(style="default").get_style_defs([".comment-text pre", ".post-body pre"])
    # The formatter's own background and line-number rules target classes we never emit.
    kept = [line for line in rules.splitlines() if "pre ." in line]
    return "/* Generated by forum.services.markdown.pygments_css(); do not edit. */\n" + (
        "\n".join(kept) + "\n"
    )


_STYLED_CLASSES = frozenset(re.findall(r"pre \.([\w-]+),", pygments_css())) - {"hll"}


# The help page (posts.markdown_help) shows each of these with what it becomes.
HELP_EXAMPLES = (
    "**bold**, _italic_, ~~struck through~~ and `code`",
    '[a link](https://example.org "its title"), a bare https://example.org or www.example.org',
    "> A quote\n> over two lines",
    "- a list\n- of things\n\n1. numbered\n2. too",
    "| Fruit | Price |\n| ----- | ----: |\n| apple | 1.20 |\n| pear  | 0.90 |",
    '```python\ndef greet(name):\n    return f"Hello, {name}!"\n```',
    'Some <abbr title="HyperText Markup Language">HTML</abbr> tags work <em>too</em>.',
    "A line break\nis kept; a blank line\n\nstarts a new paragraph.",
    "\\*not emphasis\\*: a backslash shows the character itself",
)
