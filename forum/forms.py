"""Forms shared across blueprints."""

from flask_wtf import FlaskForm


class ActionForm(FlaskForm):
    """A field-less form: carries the CSRF token of a state-changing button."""
