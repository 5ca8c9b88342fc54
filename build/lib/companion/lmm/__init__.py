"""Linear mixed models: ``companion.lmer`` and ``companion.make_deviance`` (module
``lmer``), lme4's fitter on the engine's profiled deviance."""
