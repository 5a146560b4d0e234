"""The two survival functions the drift tests need, in closed form.

Importing ``scipy.special`` costs a drift command about 0.3 s of CPU (it clones numpy's
namespace for the array API, importing ``numpy.f2py``, ``numpy.testing`` and more), a
tenth of the command. The two functions drift needs have closed forms that are exact
to rounding, and the tests check them against scipy:

* the Kolmogorov distribution's survival function (``scipy.special.kolmogorov``), from
  its two classical series — the alternating one for ``x >= 1``, Jacobi's
  theta-transformed one below, each converging in a handful of terms;
* the chi-squared survival function with integer degrees of freedom
  (``scipy.special.chdtrc``), the regularised upper incomplete gamma function at an
  integer or half-integer, a finite sum (plus ``erfc`` for odd degrees of freedom)
  summed in log space so that no term overflows or underflows before it must.
"""

from __future__ import annotations

import math

SQRT_2PI = math.sqrt(2 * math.pi)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the asymptotic two-sample KS p-value at
    ``x = D * sqrt(n*m/(n+m))``)."""
    if x <= 0:
        return 1.0
    if x >= 1.0:
        total, k = 0.0, 1
        while True:
            term = math.exp(-2.0 * k * k * x * x)
            total += term if k % 2 else -term
            if term < 1e-300 or term < abs(total) * 1e-17:
                break
            k += 1
        return min(1.0, max(0.0, 2.0 * total))
    total, k = 0.0, 1
    c = -(math.pi**2) / (8.0 * x * x)
    while True:
        term = math.exp((2 * k - 1) ** 2 * c)
        total += term
        if term < total * 1e-17 or term == 0.0:
            break
        k += 1
    return min(1.0, max(0.0, 1.0 - SQRT_2PI / x * total))


def chi2_sf(df: int, x: float) -> float:
    """P(X > x) for a chi-squared variable with ``df`` (a positive integer) degrees of freedom."""
    if df < 1 or df != int(df):
        raise ValueError(f"degrees of freedom must be a positive integer, got {df}")
    if x <= 0:
        return 1.0
    y = x / 2.0
    log_y = math.log(y)
    if df % 2 == 0:  # Q(a, y) = e^-y * sum_{k<a} y^k / k!
        logs = [-y + k * log_y - math.lgamma(k + 1) for k in range(df // 2)]
        head = 0.0
    else:  # Q(a, y) = erfc(sqrt y) + e^-y * sum_{1<=k<=a-1/2} y^(k-1/2) / Gamma(k+1/2)
        logs = [-y + (k - 0.5) * log_y - math.lgamma(k + 0.5) for k in range(1, (df - 1) // 2 + 1)]
        head = math.erfc(math.sqrt(y))
    if not logs:
        return head
    top = max(logs)
    return min(1.0, head + math.exp(top) * math.fsum(math.exp(v - top) for v in logs))
