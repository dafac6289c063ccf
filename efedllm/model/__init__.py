"""The model side shared by servers, clients and verifiers: finding and converting a model, loading only a
span of its transformer layers (servers) or only its embeddings and head (clients)."""
