"""An OpenAI-compatible HTTP API over the network (``efedllm api``): ``/v1/models``, ``/v1/chat/completions`` and
``/v1/completions``, streamed or not, so that any tool built on the ``openai`` client can use the network.

    request (JSON) -> api/bodies.py (checked, OpenAI-shaped 4xx) -> api/engine.py (a DistributedModel, one
    generation per worker thread, paying as a client) -> api/app.py (a JSON answer or server-sent events)
"""
