"""For learners and teachers: the exercises as notebooks to hand out (``assignments``)
and the learners' self-checks (``check``, also reachable as ``companion.check``)."""
