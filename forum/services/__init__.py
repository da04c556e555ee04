"""Plain functions holding the forum's rules: no request, no commits."""
