"""Old WordPress addresses of imported posts, redirected to their new pages.

The blueprint is `forum.legacy.views.bp`. This package imports nothing, so no import
cycle runs through it.
"""
