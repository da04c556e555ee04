from forum.legacy.views import bp

__all__ = ["bp"]
