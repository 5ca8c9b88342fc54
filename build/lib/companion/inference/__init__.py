"""Inference on a fitted model, below the result class that offers it as methods:
denominator degrees of freedom (``satterthwaite``, ``kenward_roger``) and F tests
(``hypotheses``, ``ftests``), profile intervals (``profile``, ``profile_glmm``), and
simulation, refitting and the parametric bootstrap (``resample``, ``replicates``,
``bootmer``)."""
