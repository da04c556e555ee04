"""Synthetic but realistic comment bodies: prose with paragraphs, links and a little markup."""

from __future__ import annotations

import random

_VOCABULARY = (
    "the of and to in is that it for on with as was this be are not have but at by from "
    "or an they we you which one all would there their what so if about when out up can "
    "more time like just people think only some could them other than then now also its "
    "after work first well way even new want because any these give day most us database "
    "query index page thread comment reply server cache latency worker request forum post "
    "moderator queue spam link browser python flask sqlite postgres template render memory "
    "benchmark deploy config backup migration session cookie token error log metric user "
    "account email password upgrade version release feature bug patch test review design "
    "really probably actually maybe quite pretty simple hard easy fast slow small large "
    "agree disagree interesting useful wrong right true false idea question answer point"
)
WORDS = _VOCABULARY.split()
ACCENTED = ["café", "naïve", "résumé", "Zürich", "façade", "jalapeño", "Ærø", "über"]
EMOJI = ["🙂", "👍", "🎉", "🤔", "🚀"]
DOMAINS = [
    "example.org",
    "docs.example.com",
    "blog.example.net",
    "wiki.example.org",
    "news.example.com",
    "git.example.dev",
]
INLINE = ["b", "i", "em", "strong", "code", "q", "del"]


def _url(rng: random.Random) -> str:
    path = "/".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
    return f"https://{rng.choice(DOMAINS)}/{path}"


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(5, 18))]
    if rng.random() < 0.08:
        words[rng.randrange(len(words))] = rng.choice(ACCENTED)
    if rng.random() < 0.12:
        i = rng.randrange(len(words))
        tag = rng.choice(INLINE)
        words[i] = f"<{tag}>{words[i]}</{tag}>"
    text = " ".join(words)
    text = text[0].upper() + text[1:]
    end = rng.choice(".......?!")
    if rng.random() < 0.03:
        end += " " + rng.choice(EMOJI)
    return text + end


def _paragraph(rng: random.Random) -> str:
    sentences = [_sentence(rng) for _ in range(rng.randint(1, 4))]
    # A single newline inside a paragraph becomes a <br>.
    sep = "\n" if rng.random() < 0.1 else " "
    return sep.join(sentences)


def comment_body(rng: random.Random, length: int) -> str:
    """One comment of about `length` characters (markup included)."""
    parts: list[str] = []
    if rng.random() < 0.08:
        parts.append(f"<blockquote>{_sentence(rng)}</blockquote>")
    size = sum(len(p) for p in parts)
    while size < length:
        para = _paragraph(rng)
        parts.append(para)
        size += len(para) + 2
    body = "\n\n".join(parts)
    body = body[: max(length, 200)].rsplit(" ", 1)[0]
    extras = []
    roll = rng.random()
    if roll < 0.30:  # a bare URL: linkified
        extras.append(f"See {_url(rng)} for more.")
    elif roll < 0.42:  # an explicit link
        extras.append(f'Details <a href="{_url(rng)}" title="details">here</a>.')
    elif roll < 0.48:  # two links: held by the links rule
        extras.append(f"Compare {_url(rng)} and {_url(rng)}.")
    if rng.random() < 0.05:
        extras.append("<pre><code>SELECT count(*) FROM comment WHERE visible;</code></pre>")
    if rng.random() < 0.03:  # something the sanitizer has to take out
        extras.append(
            rng.choice(
                [
                    "<script>alert(1)</script>Hi",
                    '<img src="x" onerror="alert(1)">',
                    '<a href="javascript:alert(1)">click</a>',
                    '<span style="color:red" onclick="x()">red</span>',
                ]
            )
        )
    if extras:
        body = body + "\n\n" + " ".join(extras)
    return body


def corpus(n: int, seed: int, low: int = 200, high: int = 2000) -> list[str]:
    """`n` comment bodies whose lengths are spread evenly between `low` and `high`."""
    rng = random.Random(seed)
    return [comment_body(rng, rng.randint(low, high - 120)) for _ in range(n)]
