from forum.moderation.views import bp

__all__ = ["bp"]
