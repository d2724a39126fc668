"""The registered paper reproductions, one module each (see ``rectlab reproduce --list``)."""

from __future__ import annotations

from . import (
    activation_search,
    conv_filter,
    dead_neurons,
    elu,
    erase_relu,
    gelu_field,
    helu,
    init_depth,
    prelu,
    relu_classifier,
    smooth,
    swish_gelu,
    xor_prelu,
)

# The order of ``rectlab reproduce --list``.
ALL = (
    prelu.REPRODUCTION,
    init_depth.REPRODUCTION,
    erase_relu.REPRODUCTION,
    elu.REPRODUCTION,
    smooth.REPRODUCTION,
    xor_prelu.REPRODUCTION,
    relu_classifier.REPRODUCTION,
    dead_neurons.REPRODUCTION,
    swish_gelu.REPRODUCTION,
    helu.REPRODUCTION,
    # the activation search, the conv-filter teacher-student problem, GELU against the field
    activation_search.REPRODUCTION,
    conv_filter.REPRODUCTION,
    gelu_field.REPRODUCTION,
)

__all__ = ["ALL"]
