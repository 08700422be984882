"""The webhook intake against a bare Starlette baseline: `python -m bench.webhooks.run`."""
