"""`python -m raibid_api` runs the command line."""

from raibid_api.cli import app

app()
