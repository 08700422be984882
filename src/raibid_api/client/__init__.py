"""The terminal client: `raibid-api jobs ...` and `raibid-api logs ...` against a server's API."""
