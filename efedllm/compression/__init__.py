"""Shrinking weights for transfer (paper sections 4.2 and 4.3): truncated SVD factors (``svd``), the sizes that
choose their rank (``sizes``, eq. 10 and 15), and the encodings a span's tensors travel in with their checksums
(``codec``). This is the runtime layer under efedllm.weights; the paper's analysis and plots are efedllm.analysis."""
