"""The web dashboard's server side: it serves the built frontend (``frontend/dist``) and the deployment file, and
relays the page's read-only JSON-RPC calls to the chain from the same origin (no CORS setup on the node, and
a phone on the LAN can use the page while the node listens on localhost only)."""
