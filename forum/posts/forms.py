from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length

from forum.forms import Form, Visible


class PostForm(Form):
    title = StringField("Title", validators=[Visible(), Length(max=200)])
    body = TextAreaField("Body", validators=[Visible(), Length(max=100_000)])
    tags = StringField("Tags (comma-separated)", validators=[Length(max=500)])
    comments_open = BooleanField("Comments open", default=True)
