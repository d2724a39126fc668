"""Reproductions that train hundreds of tiny models at once as one batched tensor program.

* `xor` — XOR with a single PReLU unit, over learning rates (Pinto & Tavares 2024);
* `planted_filter` — learning a planted conv filter (Du, Lee & Tian 2017).
"""
