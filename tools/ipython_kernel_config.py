# The kernel configuration of the book's build (tools/build_book.py points IPYTHONDIR at a
# copy of it). Figures are SVG with their text kept as text: they stay sharp at any zoom,
# and an edition in another language translates their labels (book/_ext/editions.py).
c = get_config()  # noqa: F821
c.InlineBackend.figure_formats = {"svg"}
c.InlineBackend.rc = {"svg.fonttype": "none"}
