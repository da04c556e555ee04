from forum.comments.views import bp

__all__ = ["bp"]
