"""The moderators' dashboard.

The blueprint is `forum.moderation.views.bp`. This package imports nothing, so no import
cycle runs through it.
"""
