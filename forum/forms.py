"""The base of every form, and the fields and checks all blueprints share.

Forms check shape only; rules that need the database or settings are the services'.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, IntegerField, SelectMultipleField
from wtforms.validators import StopValidation, ValidationError

from forum.ids import MAX_ID, parse_id
from forum.services.sanitize import is_blank

SEND_ONCE = "This field was sent more than once."


class Form(FlaskForm):
    """Every form of the forum: a field that takes one value must be sent once.

    A file where text is expected never gets here (security.py refuses file parts for
    the whole app), and a missing field is the same as an empty one.
    """

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            if _takes_one_value(field) and len(field.raw_data or ()) > 1:
                field.errors = [*field.errors, SEND_ONCE]
                valid = False
        return valid


def _takes_one_value(field: Field) -> bool:
    return not (isinstance(field, SelectMultipleField) or getattr(field, "takes_many", False))


class ActionForm(Form):
    """A field-less form: carries the CSRF token of a state-changing button."""


class Visible:
    """Required, and made of something a reader can see: text of only spaces, zero-width,
    control or format characters counts as empty (DataRequired takes "\\u200b")."""

    def __init__(self, message: str = "This field is required.") -> None:
        self.message = message
        self.field_flags = {"required": True}

    def __call__(self, _form: FlaskForm, field: Field) -> None:
        if not isinstance(field.data, str) or is_blank(field.data):
            field.errors[:] = []
            raise StopValidation(self.message)


class IdField(HiddenField):
    """A hidden id (`parent_id`): empty, or ASCII digits within the id range; `data` is an int
    or None, so nothing downstream converts or range-checks it again."""

    def __init__(self, label: str | None = None, validators: Any = None, **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.raw = ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.raw = valuelist[0].strip() if valuelist and isinstance(valuelist[0], str) else ""
        self.data = parse_id(self.raw)

    def pre_validate(self, form: FlaskForm) -> None:
        if self.raw and self.data is None:
            raise ValidationError("That is not a comment you can reply to.")

    def _value(self) -> str:
        return "" if self.data is None else str(self.data)


class NumberField(IntegerField):
    """A whole number typed in ASCII digits (IntegerField also takes "١", "1_000", " 7 ")."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = valuelist[0].strip() if isinstance(valuelist[0], str) else None
        self.data = parse_id(raw, low=0, high=MAX_ID) if raw else None
        if raw and self.data is None:
            raise ValueError("Write a whole number with the digits 0-9.")
