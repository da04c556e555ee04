"""Forms of the dashboard: they check shape; what the database says is the services' job."""

from __future__ import annotations

from flask import current_app
from wtforms import (
    BooleanField,
    Field,
    FloatField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from forum.forms import Form, NumberField, Visible
from forum.ids import parse_id
from forum.models import DECISIONS
from forum.services.queue import GROUP_KINDS
from forum.services.settings import MODES

GROUP_STATUSES = ("pending", "approved", "spam", "rejected")


class IdListField(Field):
    """Repeated integer ids (`ids=1&ids=2`); anything else is a form error, not a 500."""

    takes_many = True

    def __init__(self, label=None, validators=None, max_ids: int | None = None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.max_ids = max_ids
        self.data: list[int] = []
        self._raw: list[str] = []

    def process_formdata(self, valuelist: list[str]) -> None:
        self._raw = valuelist

    def pre_validate(self, form: Form) -> None:
        limit = self.max_ids or current_app.config["MODERATION_BULK_MAX"]
        if len(self._raw) > limit:
            raise ValidationError(f"Choose at most {limit} comments at a time.")
        ids = []
        for raw in self._raw:
            ident = parse_id(raw.strip()) if isinstance(raw, str) else None
            if ident is None:
                raise ValidationError("Not a comment id.")
            ids.append(ident)
        self.data = list(dict.fromkeys(ids))

    def _value(self) -> str:
        return ""


class DecisionForm(Form):
    """A reason that goes with a decision: one from the preset list, or typed."""

    reason = SelectField("Reason", choices=[], validate_choice=True, default="")
    note = StringField("Or in your own words", validators=[Length(max=500)])
    next = HiddenField(validators=[Length(max=2000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        presets = current_app.config["MODERATION_DECISION_REASONS"]
        self.reason.choices = [SelectChoice("", "No reason given"), *presets]

    @property
    def reason_text(self) -> str:
        return (self.note.data or "").strip() or (self.reason.data or "")


class BulkForm(DecisionForm):
    action = SelectField(choices=list(DECISIONS), validators=[InputRequired()])
    ids = IdListField()
    # Without JavaScript, "select the whole page" sends the page's ids along.
    all_on_page = BooleanField("Select every comment on this page")
    page_ids = IdListField()

    def selected_ids(self) -> list[int]:
        return self.page_ids.data if self.all_on_page.data else self.ids.data


class EditForm(DecisionForm):
    body = TextAreaField("Comment", validators=[Visible(), Length(max=50_000)])


class ReplyForm(Form):
    body = TextAreaField("Your reply", validators=[Visible(), Length(max=50_000)])
    next = HiddenField(validators=[Length(max=2000)])


class SpamAboveForm(Form):
    threshold = FloatField(
        "Spam every pending comment scoring at least",
        validators=[InputRequired(), NumberRange(0, 1)],
        default=0.75,
    )
    next = HiddenField(validators=[Length(max=2000)])


class BanForm(Form):
    account = BooleanField("Their account")
    email = BooleanField("Their email address")
    ip = BooleanField("Their IP address")
    remove_everything = BooleanField("Also remove their approved comments")
    reason = StringField("Reason (for the log)", validators=[Length(max=300)])
    next = HiddenField(validators=[Length(max=2000)])


class UndoForm(Form):
    batch = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{30}$")])
    next = HiddenField(validators=[Length(max=2000)])


class GroupActionForm(DecisionForm):
    kind = SelectField(choices=list(GROUP_KINDS), validators=[InputRequired()])
    value = HiddenField(validators=[DataRequired(), Length(max=500)])
    status = SelectField(
        choices=list(GROUP_STATUSES), validators=[InputRequired()], default="pending"
    )
    action = SelectField(choices=list(DECISIONS), validators=[InputRequired()])


class SettingsForm(Form):
    moderation_mode = SelectField(
        "Hold comments",
        choices=[
            SelectChoice("first-time", "from authors without an approved comment (first-time)"),
            SelectChoice("all", "always (every comment)"),
            SelectChoice("off", "only when another rule holds them"),
        ],
    )
    max_links = NumberField(
        "Hold a comment with this many links or more (0: never)",
        validators=[InputRequired(), NumberRange(0, 1000)],
    )
    hold_words = TextAreaField(
        "Hold words and phrases, one a line", validators=[Length(max=20_000)]
    )
    block_words = TextAreaField(
        "Block words and phrases (spam), one a line", validators=[Length(max=20_000)]
    )
    hold_on_sanitized = BooleanField("Hold a comment when the sanitizer removed markup")
    min_submit_seconds = NumberField(
        "A form sent back within this many seconds is spam (0: off)",
        validators=[InputRequired(), NumberRange(0, 600)],
    )
    flags_to_requeue = NumberField(
        "Reader flags that send a comment back to the queue (0: never)",
        validators=[InputRequired(), NumberRange(0, 1000)],
    )
    digest_minutes = NumberField(
        "Mail moderators about held comments at most every N minutes",
        validators=[InputRequired(), NumberRange(1, 10_080)],
    )
    max_depth = NumberField("Reply levels", validators=[InputRequired(), NumberRange(1, 20)])
    threads_per_page = NumberField(
        "Threads per page", validators=[InputRequired(), NumberRange(1, 500)]
    )
    edit_window_minutes = NumberField(
        "Authors may edit for N minutes", validators=[InputRequired(), NumberRange(0, 100_000)]
    )
    close_after_days = NumberField(
        "Close comments after N days (0: never)",
        validators=[InputRequired(), NumberRange(0, 100_000)],
    )
    comment_max_length = NumberField(
        "Longest comment (characters)", validators=[InputRequired(), NumberRange(100, 50_000)]
    )
    duplicate_window_seconds = NumberField(
        "Refuse the same comment again within N seconds",
        validators=[InputRequired(), NumberRange(0, 86_400)],
    )

    spam_threshold = FloatField(
        "Spam filter: send to Spam at this score or above (0 to 1; 1: never)",
        validators=[Optional(), NumberRange(0, 1)],
    )
    spam_hold_threshold = FloatField(
        "Spam filter: hold for review at this score or above (1: never)",
        validators=[Optional(), NumberRange(0, 1)],
    )
    spam_min_decisions = NumberField(
        "Spam filter: decide only after this many moderator decisions of each kind",
        validators=[Optional(), NumberRange(1, 100_000)],
    )

    def validate_moderation_mode(self, field: SelectField) -> None:
        if field.data not in MODES:
            raise ValidationError("Unknown mode.")

    def values(self) -> dict:
        return {name: self[name].data for name in self._fields if name != "csrf_token"}
