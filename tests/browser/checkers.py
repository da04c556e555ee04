"""The page checkers the browser tests use: axe-core, the Nu HTML checker, page width.

Both checkers come from the npm registry (tests/browser/package.json, installed into
tests/browser/node_modules by `make test`); the Nu checker runs on Debian's Java. Without
them the tests are skipped, except under CI, where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page

NODE_MODULES = Path(__file__).parent / "node_modules"
AXE = NODE_MODULES / "axe-core" / "axe.min.js"
VNU = NODE_MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
JAVA = shutil.which("java") or "/usr/bin/java"
# WCAG 2.1 level A and AA, as axe-core tags them.
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
NARROW_WIDTHS = (320, 390)
DESKTOP = {"width": 1280, "height": 900}


def require(*paths: Path | str) -> None:
    """Skip without a checker; under CI (CI=1) fail instead: CI must not skip."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        message = f"missing {', '.join(missing)}: run `make test` (npm ci in tests/browser)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                          resultTypes: ["violations"]});
  return result.violations.map(v => `${v.id} (${v.impact}): ${v.help} -- ` +
    v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
}"""

WIDTH = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"


@dataclass
class PageAudit:
    """Runs axe and the width check on pages and keeps their HTML for one Nu checker run."""

    folder: Path
    problems: list[str] = field(default_factory=list)
    saved: dict[str, str] = field(default_factory=dict)  # file name -> what it was

    def check(self, page: Page, name: str, served: str | None) -> None:
        """axe on the page as it is now, its width at 320 and 390 px, and its HTML kept."""
        label = f"{name} ({page.url})"
        page.wait_for_load_state("load")
        for violation in page.evaluate(AXE_RUN, WCAG_21_AA):
            self.problems.append(f"axe: {label}: {violation}")
        for width in NARROW_WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            scroll, client = page.evaluate(WIDTH)
            if scroll > client:
                self.problems.append(f"width: {label}: {scroll} px wide at {width} px")
        page.set_viewport_size(DESKTOP)
        n = len(self.saved)
        if served is not None:
            self.save(f"{n:03d}-served.html", served, f"{label}, as served")
        self.save(f"{n:03d}-scripted.html", page.content(), f"{label}, after its scripts ran")

    def save(self, filename: str, html: str, what: str) -> None:
        (self.folder / filename).write_text(html, encoding="utf-8")
        self.saved[filename] = what

    def run_nu_checker(self) -> None:
        """One run of the Nu HTML checker over every page kept (the JVM is slow to start)."""
        if not self.saved:
            return
        files = [str(self.folder / name) for name in sorted(self.saved)]
        result = subprocess.run(
            [JAVA, "-jar", str(VNU), "--errors-only", "--format", "json", *files],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        try:
            messages = json.loads(result.stderr or result.stdout or "{}").get("messages", [])
        except json.JSONDecodeError:
            self.problems.append(
                f"vnu: no report (exit {result.returncode}): {result.stderr[:500]}"
            )
            return
        for m in messages:
            what = self.saved.get(Path(m.get("url", "")).name, m.get("url", ""))
            self.problems.append(
                f"vnu: {what}: line {m.get('lastLine')}: {m.get('message')} "
                f"[{m.get('extract', '').strip()[:120]}]"
            )
        if result.returncode and not messages:
            self.problems.append(f"vnu: exit {result.returncode}: {result.stderr[:500]}")
