from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class PostForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    body = TextAreaField("Body", validators=[DataRequired(), Length(max=100_000)])
    tags = StringField("Tags (comma-separated)", validators=[Length(max=500)])
    comments_open = BooleanField("Comments open", default=True)
