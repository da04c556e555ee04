"""Catching XSS in a real browser: the corpus, an interaction pass and a DOM audit.

A payload counts as having run when a dialog opens (alert, confirm, prompt; print() is
recorded by an init script, it opens no dialog), when the page asks for anything off
the machine, or when the DOM audit finds markup that could run: an event-handler
attribute, a javascript:/vbscript:/data: URL, or an element a comment may not contain.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

CORPUS_FILE = Path(__file__).parent.parent / "xss_corpus.txt"


def load_corpus() -> list[str]:
    """One payload a line; '#' comments and blank lines skipped; literal \\n is a newline."""
    text = CORPUS_FILE.read_text(encoding="utf-8")
    # split("\n"), not splitlines(): payloads may hold \x0b, \x1c or U+2028 on purpose.
    return [
        line.replace("\\n", "\n")
        for line in text.split("\n")
        if line.strip() and not line.startswith("#")
    ]


# Before any page script: print() opens no dialog, so record it; a global marker lets a
# payload that only sets a variable be noticed too.
INIT_SCRIPT = """
window.__xss = [];
window.print = function () { window.__xss.push("print()"); };
"""

# Fire the usual events at every element in scope (inline handlers run for untrusted
# events) while keeping links and forms from navigating away.
INTERACT = """
(scope) => {
  const stop = (event) => event.preventDefault();
  document.addEventListener("click", stop, true);
  document.addEventListener("auxclick", stop, true);
  document.addEventListener("submit", stop, true);
  const types = ["mouseover", "mouseenter", "mousemove", "mouseout", "mouseleave",
    "mousedown", "mouseup", "click", "dblclick", "contextmenu", "auxclick",
    "pointerover", "pointerenter", "pointerdown", "pointerup", "pointermove",
    "touchstart", "touchend", "focus", "focusin", "blur", "focusout",
    "keydown", "keyup", "keypress", "input", "change", "select", "beforeinput",
    "copy", "cut", "paste", "drag", "dragstart", "dragend", "dragenter", "dragover", "drop",
    "wheel", "scroll", "toggle", "animationstart", "animationend", "transitionend",
    "load", "error", "show", "search", "invalid", "beforetoggle"];
  let count = 0;
  for (const root of document.querySelectorAll(scope)) {
    for (const el of [root, ...root.querySelectorAll("*")]) {
      count += 1;
      for (const type of types) {
        try { el.dispatchEvent(new Event(type, {bubbles: true, cancelable: true})); }
        catch (e) { /* an element may refuse an event */ }
      }
      if (typeof el.focus === "function") { try { el.focus(); } catch (e) {} }
    }
  }
  return count;
}
"""

# Markup that could run. `scope` selects what users wrote (only text and links belong
# there); handler attributes and dangerous URLs are looked for in the whole document.
AUDIT = """
(scope) => {
  const problems = [];
  const where = (el) => {
    const item = el.closest("[data-comment-id], li.comment, li.queue-item");
    return item ? "comment " + (item.dataset.commentId || item.dataset.id || item.id) : "page";
  };
  const describe = (el) => el.outerHTML.slice(0, 200);
  const URL_ATTRS = ["href", "src", "action", "formaction", "xlink:href", "srcdoc", "data",
    "poster", "background", "lowsrc", "dynsrc", "codebase", "ping", "srcset", "manifest",
    "cite", "longdesc", "usemap", "icon", "to", "from", "values", "by"];
  const BAD_URL = /^(javascript|vbscript|data|livescript|mocha):/i;
  const FORBIDDEN = new Set(["script", "iframe", "frame", "frameset", "object", "embed",
    "applet", "base", "meta", "link", "style", "template", "svg", "math", "form", "input",
    "button", "textarea", "select", "option", "img", "image", "video", "audio", "source",
    "track", "portal", "noscript", "xmp", "plaintext", "noembed", "isindex", "param",
    "marquee", "details", "dialog", "animate", "set", "use", "foreignobject", "frame",
    "keygen", "body", "html", "head", "title", "bgsound", "layer", "ilayer", "xml"]);
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on")) {
        problems.push(`${where(el)}: handler attribute ${name}: ${describe(el)}`);
      }
      if (URL_ATTRS.includes(name)) {
        const value = attr.value.replace(/[\\x00-\\x20]/g, "");
        if (BAD_URL.test(value)) {
          problems.push(`${where(el)}: ${name}=${attr.value.slice(0, 80)}: ${describe(el)}`);
        }
      }
    }
  }
  for (const script of document.scripts) {
    const src = script.getAttribute("src") || "";
    if (!src.startsWith("/static/")) {
      problems.push(`${where(script)}: foreign script: ${describe(script)}`);
    }
  }
  for (const el of document.querySelectorAll("base, meta[http-equiv], iframe, object, embed")) {
    problems.push(`${where(el)}: forbidden element: ${describe(el)}`);
  }
  for (const root of document.querySelectorAll(scope)) {
    for (const el of root.querySelectorAll("*")) {
      const html = el.namespaceURI === "http://www.w3.org/1999/xhtml";
      if (FORBIDDEN.has(el.localName.toLowerCase()) || !html) {
        problems.push(`${where(el)}: element <${el.localName}> in user content: ${describe(el)}`);
      }
    }
  }
  return problems;
}
"""


def evaluate(page: Page, script: str, arg: object) -> object:
    """page.evaluate, once more if a navigation a payload caused got in the way."""
    try:
        return page.evaluate(script, arg)
    except PlaywrightError:
        page.wait_for_load_state("load")
        return page.evaluate(script, arg)


def inspect(page: Page, url: str, scope: str) -> tuple[int, list[str]]:
    """Load `url`, then examine it."""
    page.goto(url, wait_until="load")
    return examine(page, scope)


def examine(page: Page, scope: str) -> tuple[int, list[str]]:
    """Let late handlers fire, interact with `scope`, then audit the DOM.

    Returns how many elements were exercised and what the audit and the init script
    found; dialogs and outside requests are collected by the context's Guard.
    """
    page.wait_for_timeout(300)  # onerror, autofocus, ontoggle and animations fire late
    exercised = evaluate(page, INTERACT, scope)
    page.wait_for_timeout(250)  # setTimeout-based payloads
    problems = list(evaluate(page, AUDIT, scope))
    problems += [f"ran: {what}" for what in evaluate(page, "() => window.__xss || []", None)]
    return int(exercised), problems
