"""The web console: server-rendered pages, split by who reads them."""
