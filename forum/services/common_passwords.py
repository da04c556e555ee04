"""Is a password one that attackers try first? A public top list plus common patterns.

The list (forum/data/common_passwords.txt, see LICENSE-common-passwords.txt there) holds
the 20,000 most common leaked passwords; a password is refused when it is on it, or when
it is a listed word dressed up the usual ways: capitals, l33t digits and symbols, a year or
digits or punctuation before or after ("Dragon2024!", "P@ssw0rd123", "123monkey!").
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

DATA_FILES = ("common_passwords.txt", "common_passwords_extra.txt")
# What people wrap a word in: digits, punctuation and spaces at either end.
_WRAPPING = re.compile(r"^[\d\W_]+|[\d\W_]+$")
_LEET = str.maketrans(
    {
        "@": "a",
        "4": "a",
        "0": "o",
        "1": "i",
        "!": "i",
        "3": "e",
        "$": "s",
        "5": "s",
        "7": "t",
        "+": "t",
        "8": "b",
        "9": "g",
    }
)
MIN_CORE = 3


@cache
def common_passwords() -> frozenset[str]:
    """Every listed password, lower-cased; read once per process."""
    folder = resources.files("forum") / "data"
    words: set[str] = set()
    for name in DATA_FILES:
        text = (folder / name).read_text(encoding="utf-8")
        words.update(line.strip().casefold() for line in text.splitlines() if line.strip())
    return frozenset(words)


def core_word(password: str) -> str:
    """The password without the digits and symbols wrapped around it, lower-cased."""
    return _WRAPPING.sub("", password.casefold())


def is_common(password: str) -> bool:
    """On the list, or a listed word with the usual decorations."""
    listed = common_passwords()
    folded = password.casefold()
    candidates = {folded, folded.translate(_LEET), folded.replace(" ", "")}
    core = core_word(password)
    if len(core) >= MIN_CORE:
        candidates |= {core, core.translate(_LEET), core_word(core.translate(_LEET))}
    return any(c in listed for c in candidates if c)


def is_monotonous(password: str) -> bool:
    """Two distinct characters or fewer, or a run like 1234567890 or 9876543210."""
    if len(set(password)) <= 2:
        return True
    steps = {ord(b) - ord(a) for a, b in zip(password, password[1:], strict=False)}
    return steps in ({1}, {-1})
