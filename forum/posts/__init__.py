"""The front page, tag pages, the post page and writing posts.

The blueprint is `forum.posts.views.bp`. This package imports nothing, so no import
cycle runs through it.
"""
