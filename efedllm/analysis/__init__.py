"""The paper's efficiency analysis for ``efedllm analyze`` and bench/: its formulas and stated numbers
(``paper``), its figures (``plots``, which needs matplotlib) and what compression does to the real model
(``impact``). Kept apart from efedllm.compression, which servers and the weight source run, so that serving
weights never imports matplotlib; the dependency goes analysis -> weights -> compression."""
