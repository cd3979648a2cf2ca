"""Singular values of convolution and linear layers, spectral complexity and spectral-norm clipping: the
public names of :mod:`arlib.singular_values` (the layers as linear operators and what is measured from
them) and :mod:`arlib.clipping` (Appendix B.4.2's clipping), in one place.

The paper (Wen, Li & Jia, ICML 2020) uses singular values of weight matrices in
two places:

* Fig. 5c/d and 11c/d (Appendix B.2): the per-layer standard deviation of the
  singular values, see :func:`singular_value_std`.
* Appendix B.4.2 / D.3: the *spectral complexity* (Definition 7, the product of
  the spectral norms of all layers, :func:`spectral_complexity`) is controlled
  by clipping every convolution and linear layer to a target spectral norm
  ``c`` at the end of every epoch "following Sedghi et al. (2018)", see
  :func:`clip_model_` and :func:`spectral_clip_hook`.

How a convolution is analysed as a linear operator (circular padding, strides, speed and precision):
:mod:`arlib.singular_values`.
"""

from __future__ import annotations

from .clipping import ClipResult, clip_conv_, clip_conv_weight, clip_linear_, clip_linear_weight, clip_model_, spectral_clip_hook
from .singular_values import (
    SpectralComplexity,
    conv_singular_values,
    conv_spectral_norm,
    layer_singular_values,
    linear_singular_values,
    record_input_sizes,
    reshaped_singular_values,
    singular_value_std,
    spectral_complexity,
    spectral_norm,
    spectral_norms,
)

__all__ = [
    "ClipResult",
    "SpectralComplexity",
    "clip_conv_",
    "clip_conv_weight",
    "clip_linear_",
    "clip_linear_weight",
    "clip_model_",
    "conv_singular_values",
    "conv_spectral_norm",
    "layer_singular_values",
    "linear_singular_values",
    "record_input_sizes",
    "reshaped_singular_values",
    "singular_value_std",
    "spectral_clip_hook",
    "spectral_complexity",
    "spectral_norm",
    "spectral_norms",
]
