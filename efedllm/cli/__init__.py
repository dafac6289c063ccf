"""The ``efedllm`` command line: one subcommand per role (chain, deploy, status, demo, ...)."""
