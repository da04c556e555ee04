from forum.feeds.views import bp

__all__ = ["bp"]
