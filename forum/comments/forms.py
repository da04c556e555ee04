"""The comment form: its field names are a public interface for scripts and tests."""

from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    URL,
    DataRequired,
    Email,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)

from forum.forms import Form, IdField, Visible
from forum.models import BodyFormat
from forum.services import flags
from forum.services.markdown import Kind


def http_url(_form: Form, field: StringField) -> None:
    if field.data and not field.data.lower().startswith(("http://", "https://")):
        raise ValidationError("Only http:// and https:// addresses are allowed.")


class CommentForm(Form):
    body = TextAreaField("Comment", validators=[Visible(), Length(max=50_000)])
    parent_id = IdField()
    notify_replies = BooleanField("Email me when someone replies")
    notify_decision = BooleanField("Email me when a moderator decides on my comment")
    # Spam traps: a field people never see, and when the form was shown (signed).
    homepage = StringField("Leave this field empty", validators=[Length(max=200)])
    rendered_at = HiddenField(validators=[Length(max=200)])


class GuestCommentForm(CommentForm):
    author_name = StringField("Name", validators=[Visible(), Length(max=100)])
    author_email = StringField(
        "Email (never shown)", validators=[DataRequired(), Email(), Length(max=254)]
    )
    author_url = StringField(
        "Website", validators=[Optional(), Length(max=500), URL(require_tld=False), http_url]
    )
    remember = BooleanField("Remember my name, email and website in this browser")


class PreviewForm(Form):
    """What the live preview sends: the text, its format, and which allowlist applies."""

    body = TextAreaField("Text", validators=[Length(max=50_000)])
    body_format = SelectField(
        choices=[SelectChoice(f.value, f.value) for f in BodyFormat], validators=[InputRequired()]
    )
    kind = SelectField(
        choices=[SelectChoice(k.value, k.value) for k in Kind], validators=[InputRequired()]
    )


class EditCommentForm(Form):
    body = TextAreaField("Comment", validators=[Visible(), Length(max=50_000)])


class FlagForm(Form):
    reason = RadioField(
        "What is wrong with it?",
        choices=[SelectChoice(k, v) for k, v in flags.REASONS.items()],
        validators=[InputRequired()],
    )
    note = TextAreaField("Anything the moderators should know (optional)", [Length(max=500)])
