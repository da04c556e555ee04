"""Writing comments: submitting, replying, editing, deleting and flagging.

The blueprint is `forum.comments.views.bp`. This package imports nothing, so no import
cycle runs through it.
"""
