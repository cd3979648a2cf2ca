"""arlib: the library behind *arbook*, the reproducible companion to
Wen, Li & Jia (ICML 2020), "Towards Understanding the Regularization of
Adversarial Robustness on Neural Networks".

Modules, one job each: ``config`` (typed run configuration), ``data``,
``models``, ``attacks``, ``train``, ``evaluate``, ``spectral``, ``analysis``,
``store`` (content-addressed results), ``profiles`` and ``grid``, ``paper``
(the paper's own tables), ``plots``, ``cli``.
"""

__version__ = "0.1.0"
