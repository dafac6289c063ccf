"""Deliberate misbehaviour, for demonstrations and tests only: a faulty server (``efedllm server run --fault``,
faults.py) and a lying verifier (``efedllm verifier run --lie``, lies.py).

They show that the protocol catches each way a participant could cheat. They live here, apart, so that the
production paths (forward, commit, openings, scoring) hold no test branch: an aid is installed from the outside,
by the CLI, through extension points the production code has anyway (the server's output filters, the committer's
``claim_units``, the openings handler, the verifier's ``accuracy``). No production module imports this package.
``config.py`` is torch-free, so the CLI can name the kinds without loading torch.
"""
