"""arlib: the library behind *arbook*, the reproducible companion to
Wen, Li & Jia (ICML 2020), "Towards Understanding the Regularization of
Adversarial Robustness on Neural Networks".

Three layers, one job per module:

* core, flat in ``arlib/``: ``config`` (typed run configuration and its hash), ``errors``,
  ``data`` (datasets, subsets, evaluation splits), ``device`` (device, precision, allocator),
  ``gitinfo`` (the commit a tree is at, +dirty),
  ``models`` (the registry), ``networks`` (a run's network, built from its config or loaded with its weights),
  ``attacks``, ``train`` (the training loop), ``store`` (content-addressed results and their
  integrity), ``profiles``, ``cells`` (the state of a grid's cells, for every executor),
  ``grid`` (expand a profile's cells, train and analyse the missing ones), ``cluster`` (the
  grid as a SLURM job array through submitit), ``regimes`` (the
  low- and high-capacity profiles and the rule for collapsed runs), ``costs`` (FLOPs and
  GPU-hours of a grid);
* measurement, computed from a trained network's weights, also flat in ``arlib/``:
  ``spectral`` (the public names of two modules: ``singular_values``, of conv and linear layers as
  operators, and ``clipping``, spectral-norm clipping), ``analysis``
  (margins, loss variation, PGD accuracy), ``evaluation`` (what a trained network scores: the final
  evaluation of every run, clean and under D.2's PGD, per example), ``bound`` (Theorem 3.1's terms), ``audit`` (PGD-10's
  robust accuracy re-measured with APGD-CE and APGD-DLR), ``intervals``
  (the intervals, resolution and Holm adjustment of the verdicts). Training uses
  clipping and the final evaluation, so these two layers import each other;
* book, the subpackage ``arlib.book``. What a chapter shows: ``paper``, ``report``, ``compare``,
  ``speed``, ``claims``, ``masking``, ``plots``, ``widgets``, ``chapter``; the two contracts it shares with the
  build: ``handshake`` (what a chapter tells the build it read) and ``params`` (the chapters'
  parameters, ``book/params.yml``); how the book is built, the subpackage ``build``, which the
  content never imports: ``pipeline`` (``arlib book``), ``rerun`` (``arlib chapter``: one chapter
  through papermill), ``lab`` (``arlib lab``: the chapters as notebooks in JupyterLab), ``stamp``
  (the build stamp in every page's footer), ``slider_figures`` (each ε slider and its caption as one
  ``<figure>``), ``offline_search`` (search from the disk copy),
  ``vendor`` (see :mod:`arlib.book`). It imports the other two layers and is never imported by them
  (``tests/test_layers.py``).

``cli`` is the ``arlib`` command over all three; it reaches the book layer only inside
``arlib book``, ``arlib chapter`` and ``arlib lab``.
"""

__version__ = "0.1.0"
