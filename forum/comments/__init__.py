from forum.comments.views import bp

__all__ = ["bp"]

from forum.comments import flag_views  # noqa: E402, F401 - registers the flag routes on bp
