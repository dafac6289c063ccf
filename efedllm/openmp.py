"""How efedllm's processes wait between CPU operations (OpenMP), set before torch loads: one source for the CLI,
the benchmarks and the tests.

The processes of a network often share cores (a client and servers on one machine, or several servers), and
OpenMP's default wait (libgomp spins 300,000 times before it sleeps) burned the cores the busy stage needed: a lone
process ran 2x slower whenever another held a core. So they wait passively.

A documented option, not the default: a short spin, ``GOMP_SPINCOUNT=20000`` in the environment (it wins over the
passive policy's spin of 0), covers the microseconds between one operation and the next of a forward pass, where
a thread that sleeps at once pays a wake-up per operation. Measured on the 2-core machine (2026-12-07), side by side
in one run of `bench/inference.py --rounds 5`: transformers in one process under the servers' settings made
13.3-14.6 tokens/s against 14.6-15.1 with OpenMP's defaults while the waits were passive alone, and 15.9-17.0
against 16.0-16.9 with the spin (the penalty gone). But distributed, and under load, the ratios moved only within
this machine's noise (distributed / one process 0.86-0.87x against 0.86-0.88x; `bench/load.py --tokens 32`
4.39-4.91x against 4.48-4.71x), and the one full test run with it set by default lost a Ganache RPC call to a
30 s timeout while servers and verifiers started together on the 2 cores: spinning threads take CPU that other
processes of the same machine need. A provider whose server has cores to itself may set it.
"""

from __future__ import annotations

OPENMP_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Set where not set already, before torch is imported: ``os.environ.update({k: os.environ.get(k, v) for k, v in
OPENMP_ENV.items()})`` (a statement ruff allows above imports)."""
