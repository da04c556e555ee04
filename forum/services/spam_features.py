"""What the spam filter looks at: a comment's words, phrases, characters, links and
author, as hashed features (docs/spam-filter.md lists them)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from forum.models import Comment
from forum.services import sanitize

# Word n-grams from the first 120 words and character 4-grams from the first 150
# characters: every feature is one row to read, and a long comment shows what it is early.
MAX_WORDS = 120

MAX_CHARS = 150

_WORD_RE = re.compile(r"\w+(?:'\w+)?")

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)

_LONG_NUMBER_RE = re.compile(r"\d(?:[\s.-]?\d){6,}")

_MONEY_RE = re.compile(r"[$£€]\s?\d|\d\s?(?:[$£€]|usd|eur|gbp|dollars?|pounds?)(?!\w)")

_DOMAIN_RE = re.compile(r"\b(?:[a-z0-9-]+\.)+[a-z]{2,}\b(?:/\S*)?", re.IGNORECASE)


@dataclass(frozen=True)
class FeatureInput:
    """What the filter looks at: the text and what the rules see."""

    body: str
    author_name: str = ""
    author_email: str = ""
    author_url: str = ""
    link_domains: tuple[str, ...] = ()
    link_count: int = 0
    removed: tuple[str, ...] = ()


def input_of(comment: Comment) -> FeatureInput:
    """A stored comment as the filter saw it when it arrived."""
    facts = sanitize.html_facts(comment.body_html or "")
    return FeatureInput(
        body=sanitize.normalize_text(comment.body_source or "").strip(),
        author_name=comment.author_name or "",
        author_email=comment.author_email or "",
        author_url=comment.author_url or "",
        link_domains=tuple(facts.domains),
        link_count=len(facts.hrefs),
        removed=tuple(comment.sanitizer_report or ()),
    )


def feature_key(name: str) -> int:
    """A stable signed 64-bit hash (never 0, the model's own row)."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True) or 1


def _bucket(n: int, edges: Sequence[int]) -> str:
    for edge in edges:
        if n <= edge:
            return str(edge)
    return f">{edges[-1]}"


def extract(data: FeatureInput) -> dict[int, str]:
    """Hashed features of a submission, each with the label a moderator is shown.

    Word unigrams, bigrams and trigrams, character 4-grams (which survive misspellings
    and languages without spaces), link and author features and the text's shape.
    Character n-grams have no label: they are never shown as a reason.
    """
    named: dict[str, str] = {}
    text = unicodedata.normalize("NFKC", data.body).casefold()
    domains = {d.casefold().removeprefix("www.") for d in data.link_domains if d}
    for url in _URL_RE.findall(text):
        host = re.sub(r"^(?:https?://)?(?:www\.)?", "", url).split("/")[0].split(":")[0]
        if host:
            domains.add(host)
    for domain in sorted(domains)[:20]:
        named["domain:" + domain] = f"links to {domain}"
        named["tld:" + domain.rsplit(".", 1)[-1]] = f"a link ending in .{domain.rsplit('.', 1)[-1]}"
    links = max(data.link_count, len(domains))
    named["links:" + _bucket(links, (0, 1, 2))] = (
        "no links" if not links else "1 link" if links == 1 else f"{links} links"
    )
    plain = _URL_RE.sub(" urltoken ", text)
    plain = _DOMAIN_RE.sub(" urltoken ", plain)
    words = _WORD_RE.findall(plain)[:MAX_WORDS]
    for w in words:
        named["w:" + w] = "a web address in the text" if w == "urltoken" else f"word: {w}"
    shown = [("[link]" if w == "urltoken" else w) for w in words]
    for i, (a, b) in enumerate(zip(words, words[1:], strict=False)):
        named[f"b:{a} {b}"] = f"phrase: {shown[i]} {shown[i + 1]}"
    for i, (a, b, c) in enumerate(zip(words, words[1:], words[2:], strict=False)):
        named[f"t:{a} {b} {c}"] = f"phrase: {shown[i]} {shown[i + 1]} {shown[i + 2]}"
    squeezed = " " + " ".join(plain.split())[:MAX_CHARS] + " "
    for i in range(len(squeezed) - 3):
        named["c:" + squeezed[i : i + 4]] = ""
    name = data.author_name.casefold()
    for w in _WORD_RE.findall(name)[:10]:
        named["name:" + w] = f"author name: {w}"
    named["name-digits:" + str(any(ch.isdigit() for ch in name))] = ""
    email = data.author_email.casefold()
    if "@" in email:
        domain = email.rsplit("@", 1)[1]
        named["email-domain:" + domain] = f"email at {domain}"
    if data.author_url:
        host = re.sub(r"^(?:https?://)?(?:www\.)?", "", data.author_url.casefold())
        host = host.split("/")[0]
        named["url-domain:" + host] = f"author website {host}"
        named["has-url"] = "gave a website"
    for what in data.removed[:10]:
        named["removed:" + what.casefold()] = f"sanitizer removed {what}"
    named["len:" + _bucket(len(data.body), (20, 50, 100, 200, 400, 800))] = ""
    letters = "".join(filter(str.isalpha, data.body))  # C loops: a long body costs little
    if len(letters) >= 10:
        upper = sum(map(str.isupper, letters)) / len(letters)
        named["upper:" + str(int(upper * 4))] = "mostly capitals" if upper >= 0.5 else ""
    named["excl:" + _bucket(data.body.count("!"), (0, 1, 3))] = ""
    # Numbers generalise badly as words: a phone-like run of digits and a price do.
    if _LONG_NUMBER_RE.search(text):
        named["long-number"] = "a long number (a phone number?)"
    if _MONEY_RE.search(text):
        named["money"] = "an amount of money"
    # feature_key() inlined: a call per feature was a fifth of the time.
    return {
        _from_bytes(
            _blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
            "big",
            signed=True,
        )
        or 1: label
        for name, label in named.items()
    }


_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes
