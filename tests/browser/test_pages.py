"""Every page type, as a guest, a member and a moderator: axe-core at WCAG 2.1 AA, the Nu
HTML checker (as served and after the scripts ran), and no sideways scrolling at 320 and
390 px, on a thread whose deepest reply holds a long word, a long URL and wide code.
Refused forms are among the pages: they open at their error summary, which has the focus.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from playwright.sync_api import BrowserContext, Page, Response, expect

from forum.extensions import db
from forum.models import Ban, BanKind, BodyFormat, Flag, Role, Status, utcnow
from forum.services import accounts
from tests.browser.checkers import AXE, DESKTOP, JAVA, VNU, PageAudit, require
from tests.browser.conftest import LiveServer
from tests.browser.pages import sign_in
from tests.factories import make_comment, make_post, make_user

pytestmark = pytest.mark.browser

LONG_WORD = "Pneumono" + "x" * 192  # 200 characters, no break opportunity
LONG_URL = "https://example.org/" + "a" * 80 + "/" + "b" * 19  # 120 characters
# A Markdown table wider than a phone: it scrolls inside itself, the page does not.
WIDE_TABLE = "\n".join(
    "| " + " | ".join(cells) + " |"
    for cells in ([f"Column {i}" for i in range(12)], ["---"] * 12, ["a value"] * 12)
)
WIDE_CODE = "<pre><code>" + "wide_code_line = " + "[1, 2, 3] * 40; " * 8 + "</code></pre>"
FAULTY = (  # an unlabelled field, a duplicate id, a word wider than a phone
    '<!doctype html><html lang="en"><head><title>Faulty</title></head><body>'
    f'<input type="text"><p id="a">x</p><p id="a">{LONG_WORD}</p></body></html>'
)


def seed(live: LiveServer) -> dict:
    """Posts, a deep thread with the widest things readers write, a queue, flags, a ban."""
    with live.context():
        admin = make_user(Role.ADMIN, username="ada")
        member = make_user(Role.MEMBER, username="mel")
        post = make_post(
            admin,
            title="A long thread about winter gardens",
            body="Frost, light and what survives.\n\n" + WIDE_CODE + "\n\n" + LONG_URL,
        )
        post.tags = []
        make_post(admin, title="Closed for comments", comments_open=False)
        parent = None
        for depth in range(5):
            parent = make_comment(
                post,
                parent=parent,
                body=f"Reply at depth {depth} with a link {LONG_URL} and {LONG_WORD}",
                author_name="N" * 60 if depth == 4 else f"Reader {depth}",
                created_at=utcnow() - timedelta(minutes=50 - depth),
            )
        make_comment(post, parent=parent, body=f"Deepest: {LONG_WORD}\n\n{LONG_URL}\n\n{WIDE_CODE}")
        make_comment(post, body=WIDE_TABLE, body_format=BodyFormat.MARKDOWN)
        for n in range(4):
            make_comment(post, body=f"Top-level comment {n}, short and ordinary.")
        own = make_comment(post, user=member, body="My own comment, still editable.")
        flagged = make_comment(post, body="A comment someone flagged.")
        db.session.add(Flag(comment_id=flagged.id, user_id=admin.id, reason="spam"))
        for n in range(3):
            make_comment(
                post,
                status=Status.PENDING,
                body=f"Held comment {n} with {LONG_URL}",
                reasons=["links", "first-time"],
                ip="198.51.100.7",
            )
        make_comment(post, status=Status.SPAM, body="Buy cheap things", reasons=["block word"])
        make_comment(post, status=Status.REJECTED, body="Rude words here")
        db.session.add(Ban(kind=BanKind.IP, value="203.0.113.66", reason="flooding"))
        db.session.commit()
        return {
            "post": f"/posts/{post.id}/{post.slug}",
            "post_id": post.id,
            "own": own.id,
            "flagged": flagged.id,
            "held": parent.id,
            "admin": admin.username,
            "member": member.username,
            "reset": accounts.reset_token(member, live.app.config["SECRET_KEY"]),
        }


def visit(page: Page, url: str) -> str:
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    return response.text()


def refused(
    page: Page,
    submit: Callable[[], None],
    fill: Callable[[], None] | None = None,
) -> str:
    """Send a form that fails: the page opens at its error summary, which has the focus.

    (Most refusals are 422; sign-in, the reset request and the comment edit answer 200.)
    """
    if fill:
        fill()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        submit()
    response: Response = answer.value
    assert response.status in (200, 422), f"{response.url}: {response.status}"
    page.wait_for_load_state("load")
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    assert "#" in page.url, f"the answer is not at the form: {page.url}"
    return response.text()


def test_every_page_type_passes_axe_the_nu_checker_and_fits_a_phone(
    live: LiveServer, new_context: Callable[..., BrowserContext], tmp_path
):
    require(AXE, VNU, JAVA)
    data = seed(live)
    audit = PageAudit(tmp_path)

    def browser() -> Page:
        context = new_context(viewport=DESKTOP)
        context.add_init_script(path=str(AXE))  # through the devtools protocol: CSP allows it
        return context.new_page()

    post = data["post"]
    # A guest.
    page = browser()
    for name, url in [
        ("front page", "/"),
        ("post page", post),
        ("reply form without JavaScript", f"{post}?reply_to={data['flagged']}"),
        ("closed post", "/posts/2/closed-for-comments"),
        ("profile", f"/auth/profile/{data['member']}"),
        ("sign in", "/auth/login"),
        ("register", "/auth/register"),
        ("password reset", "/auth/reset"),
        ("404 page", "/posts/999999"),
    ]:
        response = page.goto(url)
        assert response is not None
        audit.check(page, name, response.text())
    page.goto(post)
    served = refused(page, lambda: page.get_by_role("button", name="Post Comment").click())
    audit.check(page, "refused comment", served)
    page.goto("/auth/login")
    served = refused(
        page,
        lambda: page.get_by_role("button", name="Sign in").click(),
        lambda: page.get_by_label("Username or email").fill("nobody"),
    )
    audit.check(page, "refused sign-in", served)
    page.goto("/auth/register")
    served = refused(page, lambda: page.get_by_role("button", name="Create account").click())
    audit.check(page, "refused registration", served)
    page.goto("/auth/reset")
    served = refused(
        page,
        lambda: page.get_by_role("button", name="Send the link").click(),
    )
    audit.check(page, "refused reset request", served)
    page.goto(f"/auth/reset/{data['reset']}")
    audit.check(page, "new password", None)
    served = refused(page, lambda: page.get_by_role("button", name="Save the new password").click())
    audit.check(page, "refused new password", served)
    page.context.close()

    # A member.
    page = browser()
    sign_in(page, data["member"])
    for name, url in [
        ("post page, signed in", post),
        ("edit comment", f"/comments/{data['own']}/edit"),
        ("flag comment", f"/comments/{data['flagged']}/flag"),
        ("change password", "/auth/password"),
        ("own profile", f"/auth/profile/{data['member']}"),
    ]:
        audit.check(page, name, visit(page, url))
    page.goto(f"/comments/{data['own']}/edit")
    served = refused(
        page,
        lambda: page.get_by_role("button", name="Save").click(),
        lambda: page.get_by_label("Comment").fill(""),
    )
    audit.check(page, "refused edit", served)
    page.goto(f"/comments/{data['flagged']}/flag")
    served = refused(
        page, lambda: page.get_by_role("button", name="Send to the moderators").click()
    )
    audit.check(page, "refused flag", served)
    page.goto("/auth/password")
    served = refused(page, lambda: page.get_by_role("button", name="Change password").click())
    audit.check(page, "refused password change", served)
    page.context.close()

    # A moderator (an admin, to reach the settings and the users too).
    page = browser()
    sign_in(page, data["admin"])
    for name, url in [
        ("queue", "/moderation/"),
        ("approved tab", "/moderation/?tab=approved"),
        ("spam tab", "/moderation/?tab=spam"),
        ("rejected tab", "/moderation/?tab=rejected"),
        ("flagged tab", "/moderation/?tab=flagged"),
        ("single comment", f"/moderation/comments/{data['held']}"),
        ("groups", "/moderation/groups"),
        ("audit log", "/moderation/log"),
        ("rule statistics", "/moderation/rules"),
        ("bans", "/moderation/bans"),
        ("settings", "/moderation/settings"),
        ("users", "/auth/users/"),
        ("write a post", "/posts/new"),
    ]:
        audit.check(page, name, visit(page, url))
    page.goto("/moderation/")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-dialog")).to_be_visible()
    audit.check(page, "queue with the keyboard help open", None)
    page.keyboard.press("Escape")
    page.goto(f"/moderation/comments/{data['held']}")
    served = refused(
        page, lambda: page.get_by_role("button", name="Approve and publish my reply").click()
    )
    audit.check(page, "refused moderator reply", served)
    page.goto(f"/moderation/comments/{data['held']}")
    served = refused(
        page,
        lambda: page.get_by_role("button", name="Save and approve").click(),
        lambda: page.locator("#edit-body").fill(""),
    )
    audit.check(page, "refused edit and approve", served)
    page.goto("/moderation/settings")
    served = refused(
        page,
        lambda: page.get_by_role("button", name="Save settings").click(),
        lambda: page.get_by_label("Reply levels").fill("0"),
    )
    audit.check(page, "refused settings", served)
    page.goto("/posts/new")
    served = refused(page, lambda: page.get_by_role("button", name="Publish").click())
    audit.check(page, "refused post", served)
    # The audit itself: a page with known faults must be reported by all three checks.
    page.set_content(FAULTY)
    audit.check(page, "known-faulty page", FAULTY)
    page.context.close()

    audit.run_nu_checker()
    faulty = [p for p in audit.problems if "known-faulty page" in p]
    assert any(p.startswith("axe:") and "label" in p for p in faulty), faulty
    assert any(p.startswith("width:") for p in faulty), faulty
    assert any(p.startswith("vnu:") and "Duplicate ID" in p for p in faulty), faulty
    problems = [p for p in audit.problems if p not in faulty]
    assert not problems, "\n".join(problems)
