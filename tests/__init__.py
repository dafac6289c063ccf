"""The test suites; a package so that ``tests.support`` imports the same way from every suite (pytest puts the
repository root on sys.path: ``pythonpath`` in pyproject.toml)."""
