"""Reproductions that train hundreds of tiny models at once as one batched tensor program.

* :mod:`~rectlab.reproduce.vectorized.xor` — XOR with a single PReLU unit, over learning rates (Pinto & Tavares 2024);
* :mod:`~rectlab.reproduce.vectorized.planted_filter` — learning a planted conv filter (Du, Lee & Tian 2017).
"""
