"""The local window into the site: status API, live page and Prometheus metrics (aiohttp)."""
