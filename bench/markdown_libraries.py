"""Compare markdown-it-py with mistune on the inputs the forum cares about (README: Markdown).

Run in a throw-away venv with both installed:
    python3 -m venv /tmp/md_cmp && /tmp/md_cmp/bin/pip install markdown-it-py mistune
    /tmp/md_cmp/bin/python bench/markdown_libraries.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import mistune
from markdown_it import MarkdownIt

# (input, the CommonMark 0.31 reference rendering: commonmark.js / cmark)
CASES = [
    ("*a **b* c**", "<p><em>a <em><em>b</em> c</em></em></p>\n"),
    ("**a *b** c*", "<p><em><em>a <em>b</em></em> c</em></p>\n"),
    ("[x](javascript:alert(1))", '<p><a href="javascript:alert(1)">x</a></p>\n'),
    ("<https://example.org>", '<p><a href="https://example.org">https://example.org</a></p>\n'),
    ("[r][1]\n\n[1]: https://e.org 'T'", '<p><a href="https://e.org" title="T">r</a></p>\n'),
    ("`<b>`", "<p><code>&lt;b&gt;</code></p>\n"),
    ("- a\n\n  b\n- c", "<ul>\n<li>\n<p>a</p>\n<p>b</p>\n</li>\n<li>\n<p>c</p>\n</li>\n</ul>\n"),
    ("a  \nb", "<p>a<br />\nb</p>\n"),
    ("<div>\n*x*\n</div>", "<div>\n*x*\n</div>\n"),
    ("> a\nb", "<blockquote>\n<p>a\nb</p>\n</blockquote>\n"),
    ("1) one", "<ol>\n<li>one</li>\n</ol>\n"),
    ("***", "<hr />\n"),
]


def main() -> None:
    mdit = MarkdownIt("commonmark", {"html": True})
    mist = mistune.create_markdown(escape=False, plugins=["strikethrough"])
    corpus = Path(__file__).parents[1] / "tests/xss_corpus.txt"
    texts = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line]
    texts += [source for source, _ in CASES] * 20
    for name, render in (("markdown-it-py", mdit.render), ("mistune", mist)):
        agree = sum(render(source) == expected for source, expected in CASES)
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for text in texts:
                render(text)
            runs.append(time.perf_counter() - start)
        print(
            f"{name}: {agree}/{len(CASES)} CommonMark cases as the reference renders them; "
            f"{len(texts)} texts in {statistics.median(runs) * 1000:.1f} ms (median of 5)"
        )


if __name__ == "__main__":
    main()
