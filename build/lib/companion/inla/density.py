"""GMRFLib's representation of a one-dimensional marginal (``density.c``), with which
R-INLA computes the summaries it prints: a Gaussian corrected by a spline in log density,
its moments, mode and quantiles computed on GMRFLib's grids."""

from __future__ import annotations

import numpy as np
from scipy import interpolate, special

DENSITY_POINTS = 45  # GMRFLib_INT_NUM_POINTS
DENSITY_LIMIT = 10.0  # GMRFLib_DENSITY_INTEGRATION_LIMIT, in standard deviations


class Density:
    """GMRFLib's spline-corrected Gaussian (``density.c``) in ``s = (x - centre) / scale``:
    ``log f(s) = c(s) - s^2 / 2``, ``c`` the natural cubic spline through the given points
    (extended linearly beyond them). As ``GMRFLib_init_density``: the moments by Simpson's
    rule between the outer points on 45 points, refined to 133 by linear interpolation of
    the log density; the mode by a parabola through the highest of these; the quantiles
    from their cumulative trapezoid sums, every third one kept and interpolated in
    logit(p) by Steffen's monotone spline; then the support becomes mean +- 10 sd."""

    def __init__(self, s, log_density, centre: float, scale: float):
        self.centre, self.scale, self.lo, self.hi = centre, scale, s[0], s[-1]
        self.spline = interpolate.CubicSpline(s, log_density - log_density.max() + s**2 / 2,
                                              bc_type="natural")
        coarse = np.linspace(self.lo, self.hi, DENSITY_POINTS)
        fine = np.linspace(self.lo, self.hi, 3 * DENSITY_POINTS - 2)
        log_coarse = self.log_density(coarse)
        dens = np.exp(np.interp(fine, coarse, log_coarse) - log_coarse.max())
        w = _simpson_weights(len(fine))
        self.mean = w @ (dens * fine) / (w @ dens)
        self.sd = np.sqrt(w @ (dens * fine**2) / (w @ dens) - self.mean**2)
        top = np.argmax(dens)
        self.mode = fine[top] if top in (0, len(fine) - 1) else _vertex(fine, dens, top)
        cdf = 0.5 * dens[0] + np.r_[0.0, np.cumsum((dens[1:] + dens[:-1]) / 2)]
        cdf = _logit(cdf / (cdf[-1] + 0.5 * dens[-1]))[::3]
        keep = np.r_[True, np.diff(cdf) > np.sqrt(np.finfo(float).eps)]
        self.pinv = interpolate.CubicHermiteSpline(
            cdf[keep], fine[::3][keep], _steffen_slopes(cdf[keep], fine[::3][keep]))
        self.support = self.mean + DENSITY_LIMIT * self.sd * np.array([-1.0, 1.0])

    def log_density(self, s):
        """Unnormalized log density at ``s``."""
        edge = np.clip(s, self.lo, self.hi)
        return self.spline(edge) + (s - edge) * self.spline(edge, 1) - s**2 / 2

    def quantiles(self, probs=(0.025, 0.5, 0.975)) -> np.ndarray:
        knots = self.pinv.x
        return self.centre + self.scale * self.pinv(np.clip(_logit(np.array(probs)),
                                                            knots[0], knots[-1]))

    def user_summary(self) -> list[float]:
        return [self.centre + self.scale * self.mean, self.scale * self.sd,
                *self.quantiles(), self.centre + self.scale * self.mode]

    def exp_summary(self) -> list[float]:
        """Summaries of exp(x) as R-INLA's ``inla_integrate_func``: Simpson's rule on 180
        points over the support, the mode by a parabola through the highest point of the
        log density of exp(x)."""
        s = np.linspace(*self.support, 4 * DENSITY_POINTS)
        x = self.centre + self.scale * s
        log_dens = self.log_density(s)
        dens, w = np.exp(log_dens - log_dens.max()), _simpson_weights(len(s))
        mean = w @ (dens * np.exp(x)) / (w @ dens)
        sd = np.sqrt(max(w @ (dens * np.exp(2 * x)) / (w @ dens) - mean**2, 0.0))
        log_dens_user = log_dens - x  # the density of exp(x), on the log scale
        top = np.clip(np.argmax(log_dens_user[1:-1]) + 1, 1, len(s) - 2)
        return [mean, sd, *np.exp(self.quantiles()), _vertex(np.exp(x), log_dens_user, top)]


def _simpson_weights(n: int) -> np.ndarray:
    """GMRFLib's Simpson weights 1, 4, 2, 4, ..., 1 (for even ``n`` too)."""
    return np.r_[1.0, np.where(np.arange(n - 2) % 2 == 0, 4.0, 2.0), 1.0]


def _vertex(x, y, i: int) -> float:
    """The vertex of the parabola through the points ``i - 1``, ``i``, ``i + 1``."""
    (x0, x1, x2), (y0, y1, y2) = x[i - 1:i + 2], y[i - 1:i + 2]
    return ((y0 * (x1**2 - x2**2) + y1 * (x2**2 - x0**2) + y2 * (x0**2 - x1**2))
            / (y0 * (x1 - x2) + y1 * (x2 - x0) + y2 * (x0 - x1)) / 2)


def _logit(p: np.ndarray) -> np.ndarray:
    eps = np.sqrt(np.finfo(float).eps) * np.finfo(float).eps ** 0.25  # GMRFLib's clamp
    return special.logit(np.clip(p, eps, 1 - eps))


def _steffen_slopes(x, y) -> np.ndarray:
    """Steffen's (1990) monotone slopes, the end ones as GSL's ``gsl_interp_steffen``."""
    h, d = np.diff(x), np.diff(y) / np.diff(x)
    p = (d[:-1] * h[1:] + d[1:] * h[:-1]) / (h[:-1] + h[1:])
    inner = (np.sign(d[:-1]) + np.sign(d[1:])) * np.minimum(
        np.minimum(np.abs(d[:-1]), np.abs(d[1:])), np.abs(p) / 2)
    return np.r_[d[0], inner, d[-1]]
