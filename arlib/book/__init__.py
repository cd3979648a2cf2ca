"""The book layer: everything that shows results, and the build that turns chapters into HTML.

It imports the core and the measurement layer (see :mod:`arlib`) and is never imported by
them (``tests/test_layers.py`` checks it). Modules, one job each:

* ``paper`` - the paper's own numbers (Tables 1-6, Appendix B.2) as data;
* ``report`` - the runs of a profile as tables (:func:`~arlib.book.report.collect`, seeds
  summarised, provenance notes);
* ``compare`` - our numbers next to the paper's, and a profile's settings next to Appendix D's;
* ``speed`` - the training-speed benchmark's results file as tables;
* ``claims`` - Appendix B's claims tested on our runs (the ledger);
* ``masking`` - D.2's attack checked: PGD-10's robust accuracy beside APGD's (:mod:`arlib.audit`);
* ``plots`` - the figures; ``widgets`` - the ε slider that also works in static HTML;
* ``chapter`` - what every chapter notebook does around its figures (``setup``, ``show``);
* ``handshake`` - what a running chapter tells the build (its name, the runs it read) and
  ``params`` - the chapters' parameters and their checks: the two contracts both sides share;
* ``build`` (a subpackage the modules above never import, a ``lint-imports`` contract) - how
  the book is built and rerun: ``pipeline`` (``arlib book``: execute the chapters that changed,
  run Jupyter Book), ``rerun`` (``arlib chapter``), ``lab`` (``arlib lab``), ``stamp`` (the build
  stamp in every page's footer), ``slider_figures`` (each ε slider and its caption as one ``<figure>``),
  ``offline_search`` (search snippets from the disk copy),
  ``vendor`` (the JavaScript the offline HTML serves itself).
"""
