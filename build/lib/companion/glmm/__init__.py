"""Generalized linear mixed models: lme4's ``glmer`` and ``bglmer`` (module ``glmer``),
and the chapter's other GLMM fitters: ``glm`` (stats), ``ghq`` (glmmML), ``mcla`` (glmm),
``hglm`` (hglm), ``pql`` (MASS::glmmPQL), ``glmm_reml`` (glmmTMB's REML)."""
