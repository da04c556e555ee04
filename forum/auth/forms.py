"""Account forms: shape only; the password and username rules live in services.accounts."""

from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from forum.forms import Form, Visible
from forum.models import Role

# Long enough for any passphrase, short enough that hashing it costs nothing extra.
PASSWORD_MAX = 1024


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class LoginForm(Form):
    username = StringField(
        "Username or email", validators=[DataRequired(), Length(max=254)], filters=[_strip]
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    remember = BooleanField("Remember me")


class RegisterForm(Form):
    username = StringField(
        "Username",
        validators=[Visible(), Length(min=3, max=30)],
        filters=[_strip],
        description="3-30 letters, digits, _ or -.",
    )
    email = EmailField(
        "Email", validators=[DataRequired(), Email(), Length(max=254)], filters=[_strip]
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=PASSWORD_MAX)],
        description="At least 10 characters; a few words you will remember work well.",
    )
    confirm = PasswordField(
        "Password again",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
    )


class ChangePasswordForm(Form):
    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=PASSWORD_MAX)]
    )
    password = PasswordField("New password", validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
    )


class ResetRequestForm(Form):
    email = StringField(
        "Email or username", validators=[DataRequired(), Length(max=254)], filters=[_strip]
    )


class ResetPasswordForm(Form):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
    )


class RoleForm(Form):
    role = SelectField("Role", choices=[r.value for r in Role])
