"""Generalized estimating equations as R's gee and geepack fit them (``estimating``)."""

from companion.gee.estimating import STYLES, GeeResult, gee_fit

__all__ = ["STYLES", "GeeResult", "gee_fit"]
