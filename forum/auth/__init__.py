"""Accounts: sign-in, registration, profiles, password reset and the admins' users page.

The blueprint is `forum.auth.views.bp`. This package imports nothing, so no import
cycle runs through it.
"""
