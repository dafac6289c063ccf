"""The benchmarks, each a script (``python bench/load.py``); a package so that a test can import the load it shares
(tests/network/test_load.py: ``from bench import load``)."""
