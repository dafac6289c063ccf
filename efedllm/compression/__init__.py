"""Shrinking weights for transfer (paper sections 4.2 and 4.3): truncated SVD factors (``svd``), the encodings a
span's tensors travel in with their checksums (``codec``), and the paper's efficiency formulas (``analysis``)."""
