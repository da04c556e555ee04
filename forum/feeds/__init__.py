"""Atom feeds of posts and comments.

The blueprint is `forum.feeds.views.bp`. This package imports nothing, so no import
cycle runs through it.
"""
