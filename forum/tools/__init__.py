"""Moving a forum in and out: WordPress and Disqus imports, the JSON export and import,
and the demo data. Run from the command line (`forum/tools/cli.py`, added to the `forum`
command group by `forum/cli.py`), never while serving a request; built on the services."""
