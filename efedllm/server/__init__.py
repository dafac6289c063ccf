"""A GPU provider's server: holds one span of layers and serves inference sessions over HTTP (aiohttp)."""
