"""The verifier: samples servers' committed work, recomputes it and scores the servers on chain."""
