"""The server protocol, typed once: the routes (routes.py), the JSON messages that cross the process boundary
(messages.py) and the one HTTP client of a server (client.py) that users, the verifier's canaries and the local
network harness all share, so that no two places speak the protocol each in their own way."""
