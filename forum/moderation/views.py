"""The moderators' dashboard: the queue, its actions, groups, the log, rules and settings.

Every action is a POST with CSRF that answers JSON to fetch requests (Accept:
application/json) and otherwise redirects back with an undo notice, so the page works
the same with and without JavaScript.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from forum.extensions import db, login_manager
from forum.forms import ActionForm
from forum.ids import id_arg
from forum.models import Action, Ban, BanKind, BodyFormat, Comment, Status, User
from forum.moderation import fragments, query
from forum.moderation.forms import (
    GROUP_STATUSES,
    BanForm,
    BulkForm,
    DecisionForm,
    EditForm,
    GroupActionForm,
    ReplyForm,
    SettingsForm,
    SpamAboveForm,
    UndoForm,
)
from forum.security import remember_staff
from forum.services import bans as ban_service
from forum.services import comments as comment_service
from forum.services import markdown, moderation, notifications, rule_stats, sanitize, spam_filter
from forum.services import queue as queue_service
from forum.services import settings as settings_service
from forum.services import undo as undo_service
from forum.services.accounts import safe_next
from forum.web import flush_mail_after_response, request_tab_counts

bp = Blueprint("moderation", __name__, url_prefix="/moderation")

NOTICE_KEY = fragments.NOTICE_KEY
LOG_PER_PAGE = 50
LOG_ACTIONS = tuple(Action)
# The queue's keys (static/js/moderation.js reads them from the page).
KEY_ACTIONS = {"a": Action.APPROVE, "s": Action.SPAM, "r": Action.REJECT}

bp.record_once(lambda state: fragments.init_app(state.app))


@bp.before_request
def require_moderator():
    """Every route here: moderators and admins only."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_moderator:
        abort(403)
    remember_staff(current_user)
    return None


@bp.context_processor
def dashboard_context() -> dict:
    """The layout's tab counts (once per request, as the header's badge) and notice."""
    return {"counts": request_tab_counts(), "take_notice": lambda: session.pop(NOTICE_KEY, None)}


def require_admin() -> None:
    if not current_user.is_admin:
        abort(403, description="Only admins may change the settings.")


def moderator() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


wants_json = fragments.wants_json


def back(target: str | None = None) -> str:
    """Where to go after an action: a dashboard page we were sent from, else the queue."""
    default = url_for("moderation.queue")
    path = safe_next(target, default)
    return path if path.startswith("/moderation/") else default


def refuse(message: str, code: int = 400):
    if wants_json():
        return jsonify(ok=False, message=message), code
    abort(code, description=message)


def first_error(form) -> str:
    for name, errors in form.errors.items():
        if errors:
            label = getattr(form[name], "label", None) if name in form else None
            return f"{label.text if label else name}: {errors[0]}"
    return "The form was incomplete."


def finish(outcome: moderation.Outcome, next_url: str | None = None):
    """Commit an action and answer it: JSON for fetch, else a notice with undo and a
    redirect. The JSON's tab counts are read before the commit, in the action's transaction
    (after it, the read would begin and end a transaction of its own)."""
    counts = queue_service.tab_counts() if wants_json() else None
    db.session.commit()
    flush_mail_after_response()
    undoable = bool(outcome.changed) and outcome.action not in ("undo", "unban")
    if wants_json():
        return jsonify(
            ok=True,
            action=outcome.action,
            message=outcome.message,
            batch=outcome.batch if undoable else None,
            changed=outcome.changed,
            unchanged=outcome.unchanged,
            refused=outcome.refused,
            pending_parents=outcome.pending_parents,
            counts=counts,  # what the tabs say after the action
        )
    session[NOTICE_KEY] = {
        "message": outcome.message,
        "batch": outcome.batch if undoable else None,
        "pending_parents": outcome.pending_parents[:50],
    }
    return redirect(back(next_url))


# The queue ----------------------------------------------------------------------


@bp.get("/")
@fragments.kept_whole
def queue():
    """The queue: one tab, filtered, one keyset page at a time."""
    f = query.queue_filter()
    cfg = current_app.config
    per_page = id_arg("per_page", 1, cfg["MODERATION_MAX_PER_PAGE"]) or cfg["MODERATION_PER_PAGE"]
    try:
        page = queue_service.queue_page(
            f, per_page, query.cursor_arg("after"), query.cursor_arg("before")
        )
    except queue_service.BadCursor:
        abort(400, description="That page link is broken; start again from the first page.")
    args = query.filter_args(f)
    if per_page != cfg["MODERATION_PER_PAGE"]:
        args["per_page"] = per_page
    next_url = url_for(".queue", after=page.next_cursor, **args) if page.next_cursor else None
    prev_url = url_for(".queue", before=page.prev_cursor, **args) if page.prev_cursor else None
    here = request.full_path.rstrip("?")
    items = fragments.render_items(page, here, query.ItemLinks())
    if wants_json():
        return jsonify(
            html=render_template("moderation/_items.html", items=items),
            next_url=next_url,
            counts=request_tab_counts(),
        )
    post_options = fragments.post_options(
        queue_service.posts_for_filter() if queue_service.status_of(f.tab) else [], f.post_id
    )
    # What queue.html shows beyond the items, the token, the moderator and the tab counts:
    # the page is kept for these (fragments.render_page).
    shown = {"f": f, "args": args, "post_options": post_options, "next_url": next_url}
    shown |= {"prev_url": prev_url, "here": here, "ids": tuple(i.id for i in page.items)}
    return fragments.render_page("moderation/queue.html", shown, items, queue_forms)


def queue_forms() -> dict:
    """What the queue page shows the same on every page: its empty forms, its keys."""
    return {
        "bulk_form": BulkForm(formdata=None),
        "spam_above_form": SpamAboveForm(formdata=None),
        "key_actions": KEY_ACTIONS,
    }


@bp.get("/comments/<int:comment_id>")
def item(comment_id: int):
    """One comment with everything: edit then approve, approve and reply, ban."""
    return render_item(db.get_or_404(Comment, comment_id))


def render_item(comment: Comment, status: int = 200, **forms):
    histories = queue_service.author_histories([comment])
    flags = queue_service.open_flags([comment])
    edit_form = forms.get("edit_form") or EditForm(formdata=None)
    if not forms.get("edit_form"):
        edit_form.body.data = comment.body_source
    body = render_template(
        "moderation/item.html",
        c=comment,
        history=histories.get(queue_service.author_key(comment)),
        flags=flags.get(comment.id, []),
        decision_form=DecisionForm(formdata=None),
        edit_form=edit_form,
        preview=forms.get("preview"),
        reply_preview=forms.get("reply_preview"),
        reply_form=forms.get("reply_form") or ReplyForm(formdata=None),
        ban_form=forms.get("ban_form") or BanForm(formdata=None),
        excerpt=sanitize.excerpt,
        links=query.ItemLinks(),
        here=request.path,
        log=queue_service.comment_log(comment.id),
    )
    return body, status


@bp.get("/l/<token>")
def open_link(token: str):
    """Where a signed link in a moderator's mail lands: the comment in the dashboard."""
    max_age = current_app.config["MODERATION_LINK_MAX_AGE_DAYS"] * 86400
    comment_id = notifications.comment_from_link(token[:500], max_age)
    if comment_id is None:
        flash("That link has expired or is broken; here is the queue.", "warning")
        return redirect(url_for(".queue"))
    if db.session.get(Comment, comment_id) is None:
        flash("That comment no longer exists.", "warning")
        return redirect(url_for(".queue"))
    return redirect(url_for(".item", comment_id=comment_id))


# Actions ------------------------------------------------------------------------


@bp.post("/comments/<int:comment_id>/<any(approve, reject, spam, restore, delete):action>")
def act(comment_id: int, action: str):
    """Approve, reject, spam, restore or delete one comment."""
    form = DecisionForm()
    if not form.validate_on_submit():
        return refuse(first_error(form))
    comments = moderation.load_comments([comment_id])
    if not comments:
        return refuse("That comment no longer exists.", 404)
    outcome = moderation.decide(action, comments, moderator(), form.reason_text)
    if outcome.refused:
        db.session.rollback()
        return refuse(f"Cannot {action} this comment: {moderation.refusal(action)}")
    return finish(outcome, form.next.data)


@bp.post("/bulk")
def bulk():
    """One action on a selection (or the whole page)."""
    form = BulkForm()
    if not form.validate_on_submit():
        return refuse(first_error(form))
    ids = form.selected_ids()
    if not ids:
        if wants_json():
            return refuse("Select at least one comment.")
        flash("Select at least one comment first.", "warning")
        return redirect(back(form.next.data))
    comments = moderation.load_comments(ids)
    if not comments:
        return refuse("None of those comments exist any more.", 404)
    outcome = moderation.decide(form.action.data, comments, moderator(), form.reason_text)
    return finish(outcome, form.next.data)


@bp.post("/spam-above")
def spam_above():
    """Spam every pending comment the spam filter scored at or above a threshold."""
    form = SpamAboveForm()
    if not form.validate_on_submit():
        return refuse(first_error(form))
    threshold = form.threshold.data
    ids = spam_filter.comments_above(threshold, current_app.config["MODERATION_BULK_MAX"])
    if not ids:
        if wants_json():
            return refuse(f"No pending comment scores {threshold:g} or more.", 404)
        flash(f"No pending comment scores {threshold:g} or more.", "info")
        return redirect(back(form.next.data))
    outcome = moderation.decide(
        "spam", moderation.load_comments(ids), moderator(), f"spam score {threshold:g} or more"
    )
    return finish(outcome, form.next.data)


@bp.post("/comments/<int:comment_id>/edit")
def edit(comment_id: int):
    """Edit a comment's text, then approve it."""
    comment = db.get_or_404(Comment, comment_id)
    form = EditForm()
    if not form.validate_on_submit():
        if wants_json():
            return refuse(first_error(form), 422)
        return render_item(comment, 422, edit_form=form)
    if "preview" in request.form:
        preview = markdown.render(form.body.data, comment.body_format, markdown.Kind.COMMENT)
        return render_item(comment, 200, edit_form=form, preview=preview)
    try:
        outcome = moderation.edit_and_approve(
            comment, form.body.data, moderator(), settings_service.load(), form.reason_text
        )
    except moderation.ModerationError as error:
        form.body.errors = [str(error)]
        return render_item(comment, 422, edit_form=form)
    if outcome.refused:
        return refuse("This comment cannot be approved.")
    return finish(outcome, form.next.data)


@bp.post("/comments/<int:comment_id>/reply")
def reply(comment_id: int):
    """Approve a comment and publish the moderator's reply under it."""
    comment = db.get_or_404(Comment, comment_id)
    form = ReplyForm()
    if not form.validate_on_submit():
        if wants_json():
            return refuse(first_error(form), 422)
        return render_item(comment, 422, reply_form=form)
    if "preview" in request.form:
        preview = markdown.render(form.body.data, BodyFormat.MARKDOWN, markdown.Kind.COMMENT)
        return render_item(comment, 200, reply_form=form, reply_preview=preview)
    try:
        outcome = moderation.approve_and_reply(
            comment, form.body.data, moderator(), settings_service.load()
        )
    except (moderation.ModerationError, comment_service.CommentError) as error:
        db.session.rollback()
        form.body.errors = [str(error)]
        comment = db.get_or_404(Comment, comment_id)
        return render_item(comment, 422, reply_form=form)
    return finish(outcome, form.next.data)


@bp.post("/comments/<int:comment_id>/ban")
def ban(comment_id: int):
    """Ban the author by account, email and/or IP, and spam their comments."""
    comment = db.get_or_404(Comment, comment_id)
    form = BanForm()
    if not form.validate_on_submit():
        return refuse(first_error(form))
    kinds = [
        kind
        for kind, chosen in (
            (BanKind.ACCOUNT, form.account.data),
            (BanKind.EMAIL, form.email.data),
            (BanKind.IP, form.ip.data),
        )
        if chosen
    ]
    try:
        outcome = ban_service.ban_author(
            comment,
            kinds,
            moderator(),
            (form.reason.data or "").strip(),
            form.remove_everything.data,
        )
    except moderation.ModerationError as error:
        db.session.rollback()
        if wants_json():
            return refuse(str(error), 422)
        form.account.errors = [str(error)]
        return render_item(db.get_or_404(Comment, comment_id), 422, ban_form=form)
    db.session.commit()
    # The bans are visible to everyone now; sweep again for what arrived meanwhile.
    values = [(BanKind(k), v) for k, v in outcome.extra["ban_values"]]
    late = ban_service.sweep_banned(values, moderator(), form.remove_everything.data, outcome.batch)
    return finish(outcome.merge(late), form.next.data)


@bp.post("/undo")
def undo():
    """Undo one action (a whole batch: a bulk action, a ban and its sweep)."""
    form = UndoForm()
    if not form.validate_on_submit():
        return refuse(first_error(form))
    try:
        outcome = undo_service.undo(form.batch.data, moderator())
    except moderation.ModerationError as error:
        return refuse(str(error), 404)
    return finish(outcome, form.next.data)


# Groups -------------------------------------------------------------------------


@bp.get("/groups")
def groups():
    """Comments grouped by IP, email, link domain or identical text, largest first."""
    kind = request.args.get("kind", "ip")
    status = request.args.get("status", "pending")
    if kind not in queue_service.GROUP_KINDS or status not in GROUP_STATUSES:
        abort(404)
    return render_template(
        "moderation/groups.html",
        kind=kind,
        status=status,
        groups=queue_service.groups(kind, Status(status)),
        form=GroupActionForm(formdata=None),
        excerpt=sanitize.excerpt,
    )


@bp.post("/groups/action")
def group_action():
    """One action on every comment of a group."""
    form = GroupActionForm()
    if not form.validate_on_submit():
        return refuse(first_error(form))
    ids = queue_service.group_members(form.kind.data, form.value.data, Status(form.status.data))
    if not ids:
        flash("That group is empty now.", "info")
        return redirect(url_for(".groups", kind=form.kind.data, status=form.status.data))
    outcome = moderation.decide(
        form.action.data, moderation.load_comments(ids), moderator(), form.reason_text
    )
    return finish(outcome, form.next.data or url_for(".groups", kind=form.kind.data))


# The log, rules, settings and bans ----------------------------------------------


@bp.get("/log")
def log():
    """The audit log, newest first, by moderator, action and comment."""
    who = query.text_arg("moderator", 30)
    action = request.args.get("action", "")
    comment_id = id_arg("comment")
    before = id_arg("before")
    if action and action not in LOG_ACTIONS:
        abort(404)
    entries = queue_service.log_entries(who, action, comment_id, before, LOG_PER_PAGE + 1)
    more = len(entries) > LOG_PER_PAGE
    entries = entries[:LOG_PER_PAGE]
    filters = {"moderator": who or None, "action": action or None, "comment": comment_id}
    filters = {k: v for k, v in filters.items() if v is not None}
    return render_template(
        "moderation/log.html",
        entries=entries,
        moderators=queue_service.staff(),
        actions=LOG_ACTIONS,
        filters=filters,
        next_url=url_for(".log", before=entries[-1].id, **filters) if more else None,
    )


@bp.get("/rules")
def rules():
    """For every rule: what it held, and what moderators then decided."""
    return render_template(
        "moderation/rules.html",
        stats=rule_stats.rule_statistics(),
    )


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    """Admins change the moderation rules and the discussion settings."""
    require_admin()
    current = settings_service.load()
    form = SettingsForm()
    if request.method == "GET":
        for name in form.values():
            value = getattr(current, name)
            form[name].data = "\n".join(value) if isinstance(value, tuple) else value
    elif form.validate_on_submit():
        settings_service.save(form.values())
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for(".settings"))
    status = 422 if form.errors else 200
    return render_template("moderation/settings.html", form=form), status


@bp.get("/bans")
def bans():
    """Every ban, newest first, with a button to lift it."""
    return render_template(
        "moderation/bans.html",
        bans=queue_service.recent_bans(500),
        form=ActionForm(formdata=None),
    )


@bp.post("/bans/<int:ban_id>/lift")
def lift_ban(ban_id: int):
    """Lift one ban."""
    ban_row = db.get_or_404(Ban, ban_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    ban_service.lift_ban(ban_row, moderator())
    db.session.commit()
    flash(f"Lifted the ban on {ban_row.kind.value} {ban_row.value}.", "success")
    return redirect(url_for(".bans"))
