"""What the test suites share: chain fixtures (``chain``), an aiohttp app served from a thread (``serving``),
tiny random models (``tiny_model``), a server process without a chain and a command watched by a timer
(``processes``), the protocol parameters of the contract and browser tests (``params``)."""
