"""What a WXR import did, counted for the command's report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from forum.models import Status


@dataclass
class ImportSummary:
    """What an import did (or, in a dry run, would do); every comment in the file is in
    exactly one of comments_created, comments_present and comments_skipped."""

    posts_created: int = 0
    posts_present: int = 0
    posts_updated: int = 0
    comments_in_file: int = 0
    comments_created: Counter[Status] = field(default_factory=Counter)
    pings_created: int = 0
    comments_present: int = 0
    comments_updated: int = 0
    comments_skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    authors_created: int = 0
    authors_matched: int = 0
    tags_created: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    assumed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        made = self.comments_created
        by_status = ", ".join(f"{made[s]} {s.value}" for s in Status if made[s])
        posts = f"Posts: {self.posts_created} imported, {self.posts_present} already present"
        if self.posts_updated:
            posts += f" ({self.posts_updated} updated)"
        present = f"{self.comments_present} already present"
        if self.comments_updated:
            present += f" ({self.comments_updated} updated)"
        lines = [
            posts + ".",
            f"Comments: {made.total()} imported ({by_status or 'none'}), "
            f"{self.pings_created} of them pingbacks or trackbacks; {present}; "
            f"{self.comments_skipped.total()} skipped; "
            f"{self.comments_in_file} in the file.",
        ]
        if self.comments_skipped:
            lines.append("Comments skipped: " + _counts(self.comments_skipped) + ".")
        if self.repaired:
            lines.append("Repaired: " + _counts(self.repaired) + ".")
        lines += [
            f"Authors: {self.authors_created} created, {self.authors_matched} matched.",
            f"Tags: {self.tags_created} created.",
        ]
        if self.skipped:
            lines.append("Skipped: " + _counts(self.skipped))
        lines += [f"Assumed: {line}" for line in self.assumed]
        if self.warnings:
            lines.append(f"Warnings: {len(self.warnings)} (listed above).")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counter.items()))
