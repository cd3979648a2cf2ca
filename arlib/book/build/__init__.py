"""How the book is built: chapters executed by papermill, Jupyter Book run over them, served or
opened in JupyterLab. The book's content (``arlib.book``'s other modules) never imports this
subpackage; it talks to it only through :mod:`arlib.book.handshake` and :mod:`arlib.book.params`.
"""
