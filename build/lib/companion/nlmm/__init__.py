"""Nonlinear (mixed) models: ``nls`` and its self-starting models (``selfstart``),
nlme's ``nlme`` (``nlme``, with its fitting steps in ``nlme_fit``, ``nlme_lmm``,
``nlme_optim`` and its result in ``nlme_result``) and lme4's ``nlmer`` (``nlmer``)."""
