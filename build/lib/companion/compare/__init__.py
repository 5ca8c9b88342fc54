"""R beside Python: R's reference numbers and the side-by-side tables of the book
(``tables``), and the interval tables across methods (``intervals``)."""

from companion.compare.tables import (beside, chapter_table, compare_printed, compare_tight,
                                      fit_quantities, r_table, reference)

__all__ = ["beside", "chapter_table", "compare_printed", "compare_tight", "fit_quantities",
           "r_table", "reference"]
