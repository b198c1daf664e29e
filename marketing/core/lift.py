"""Lift against a holdout: intent-to-treat estimates with 95 % intervals, and how many members a campaign needs.

Every member who became eligible is in the analysis, in the arm the holdout gave them, whether a message reached
them or not (intent to treat: a suppressed or undelivered send still counts in treatment; a control member's
would-have-sent event is what put them in the analysis). Outcomes are per member over the window after eligibility
(default 7 days): visited (0/1, from the sensor-linked devices and Wi-Fi logins), bought (0/1), revenue (cents).

Estimates (each with a normal-approximation interval, z = 1.96 for 95 %):
- ``difference`` = mean_T − mean_C, standard error sqrt(var_T/n_T + var_C/n_C) (Welch);
- ``lift`` = mean_T / mean_C − 1, its interval from log(mean_T/mean_C) by the delta method
  (SE² = var_T/(n_T·mean_T²) + var_C/(n_C·mean_C²)), so it never crosses −100 %; undefined (None) when either mean
  is 0;
- ``incremental`` = difference × n_T: visits, buyers or revenue the campaign added among the treated;
- ``iroas`` = incremental revenue ÷ cost (discounts granted + messages sent), with the interval scaled alike.
With a pre-period covariate (e.g. each member's visits in the 28 days before eligibility) the outcome is adjusted by
CUPED: y − θ·(x − mean x), θ = cov(x, y)/var(x) over all members. The adjustment keeps the expected difference and
narrows the interval by the share of variance the covariate explains.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval. ``None`` fields: not estimable (e.g. a control with no visit)."""

    value: float | None
    low: float | None
    high: float | None

    def covers(self, truth: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= truth <= self.high

    def scaled(self, k: float) -> Estimate:
        if self.value is None or self.low is None or self.high is None:
            return NONE
        lo, hi = sorted((self.low * k, self.high * k))
        return Estimate(self.value * k, lo, hi)

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low, "high": self.high}


NONE = Estimate(None, None, None)


@dataclass(frozen=True)
class Comparison:
    n_treatment: int
    n_control: int
    mean_treatment: float | None
    mean_control: float | None
    difference: Estimate
    lift: Estimate


def _as_array(values: Sequence[float] | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


def cuped(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The outcome adjusted by a pre-period covariate (same length); unchanged when the covariate does not vary."""
    if y.shape != x.shape:
        raise ValueError(f"covariate: expected {y.shape[0]} values, got {x.shape[0]}")
    var = float(np.var(x))
    if y.size < 2 or var == 0.0:
        return y
    theta = float(np.cov(x, y, ddof=0)[0, 1]) / var
    return y - theta * (x - float(np.mean(x)))


def compare(treatment: Sequence[float] | npt.NDArray[np.float64], control: Sequence[float] | npt.NDArray[np.float64],
            covariate_treatment: Sequence[float] | npt.NDArray[np.float64] | None = None,
            covariate_control: Sequence[float] | npt.NDArray[np.float64] | None = None,
            z: float = Z95) -> Comparison:
    """Compare one per-member outcome between the arms (see the module's docstring for the formulas)."""
    yt, yc = _as_array(treatment), _as_array(control)
    nt, nc = int(yt.size), int(yc.size)
    if nt == 0 or nc == 0:
        return Comparison(nt, nc, float(np.mean(yt)) if nt else None, float(np.mean(yc)) if nc else None, NONE, NONE)
    if (covariate_treatment is None) != (covariate_control is None):
        raise ValueError("covariate: give it for both arms or for neither")
    raw_t, raw_c = float(np.mean(yt)), float(np.mean(yc))
    if covariate_treatment is not None and covariate_control is not None:
        both = cuped(np.concatenate([yt, yc]), np.concatenate([_as_array(covariate_treatment),
                                                               _as_array(covariate_control)]))
        yt, yc = both[:nt], both[nt:]
    mt, mc = float(np.mean(yt)), float(np.mean(yc))
    vt = float(np.var(yt, ddof=1)) if nt > 1 else 0.0
    vc = float(np.var(yc, ddof=1)) if nc > 1 else 0.0
    diff = mt - mc
    se = math.sqrt(vt / nt + vc / nc)
    difference = Estimate(diff, diff - z * se, diff + z * se) if nt > 1 and nc > 1 else Estimate(diff, None, None)
    lift = NONE
    if mt > 0 and mc > 0 and nt > 1 and nc > 1:
        log_ratio = math.log(mt / mc)
        se_log = math.sqrt(vt / (nt * mt * mt) + vc / (nc * mc * mc))
        lift = Estimate(mt / mc - 1.0, math.exp(log_ratio - z * se_log) - 1.0, math.exp(log_ratio + z * se_log) - 1.0)
    return Comparison(nt, nc, raw_t, raw_c, difference, lift)


@dataclass(frozen=True)
class Outcomes:
    """One arm's per-member outcomes over the window, in one order (member i is index i in every array)."""

    visited: npt.NDArray[np.float64]
    bought: npt.NDArray[np.float64]
    revenue_cents: npt.NDArray[np.float64]
    #: visits in the pre-period, for CUPED (None: no adjustment)
    pre_visits: npt.NDArray[np.float64] | None = None

    @classmethod
    def of(cls, visited: Sequence[float], bought: Sequence[float], revenue_cents: Sequence[float],
           pre_visits: Sequence[float] | None = None) -> Outcomes:
        arrays = [_as_array(visited), _as_array(bought), _as_array(revenue_cents)]
        if len({a.size for a in arrays}) != 1:
            raise ValueError("outcomes: visited, bought and revenue_cents must have one value per member")
        pre = None if pre_visits is None else _as_array(pre_visits)
        if pre is not None and pre.size != arrays[0].size:
            raise ValueError("pre_visits: expected one value per member")
        return cls(arrays[0], arrays[1], arrays[2], pre)


@dataclass(frozen=True)
class LiftReport:
    visit_rate: Comparison
    purchase_rate: Comparison
    revenue_per_member: Comparison
    incremental_visits: Estimate
    incremental_buyers: Estimate
    incremental_revenue_cents: Estimate
    cost_cents: float
    iroas: Estimate

    def as_dict(self) -> dict[str, object]:
        def comp(c: Comparison) -> dict[str, object]:
            return {"n_treatment": c.n_treatment, "n_control": c.n_control, "treatment": c.mean_treatment,
                    "control": c.mean_control, "difference": c.difference.as_dict(), "lift": c.lift.as_dict()}

        return {"visit_rate": comp(self.visit_rate), "purchase_rate": comp(self.purchase_rate),
                "revenue_per_member": comp(self.revenue_per_member),
                "incremental_visits": self.incremental_visits.as_dict(),
                "incremental_buyers": self.incremental_buyers.as_dict(),
                "incremental_revenue_cents": self.incremental_revenue_cents.as_dict(),
                "cost_cents": self.cost_cents, "iroas": self.iroas.as_dict()}


def analyse(treatment: Outcomes, control: Outcomes, cost_cents: float, z: float = Z95) -> LiftReport:
    """Intent-to-treat lift of one campaign. ``cost_cents``: discounts granted plus the messages' price."""
    use_pre = treatment.pre_visits is not None and control.pre_visits is not None
    pre_t = treatment.pre_visits if use_pre else None
    pre_c = control.pre_visits if use_pre else None
    visits = compare(treatment.visited, control.visited, pre_t, pre_c, z)
    buyers = compare(treatment.bought, control.bought, pre_t, pre_c, z)
    revenue = compare(treatment.revenue_cents, control.revenue_cents, pre_t, pre_c, z)
    n_t = visits.n_treatment
    inc_revenue = revenue.difference.scaled(n_t)
    iroas = inc_revenue.scaled(1.0 / cost_cents) if cost_cents > 0 else NONE
    return LiftReport(visits, buyers, revenue, visits.difference.scaled(n_t), buyers.difference.scaled(n_t),
                      inc_revenue, float(cost_cents), iroas)


def sample_size(baseline_rate: float, relative_lift: float, control_share: float = 0.10, alpha: float = 0.05,
                power: float = 0.80) -> int:
    """Eligible members a campaign needs to detect ``relative_lift`` on a rate of ``baseline_rate`` (two-sided).

    With control share c, n_C = c·N and n_T = (1 − c)·N; the difference p_T − p_C has variance
    p_T(1 − p_T)/n_T + p_C(1 − p_C)/n_C, and detecting Δ = p_T − p_C needs (z_{1−α/2} + z_{power})·SE ≤ |Δ|.
    """
    if not 0 < baseline_rate < 1:
        raise ValueError(f"baseline_rate: expected 0 < rate < 1, got {baseline_rate!r}")
    p_t = baseline_rate * (1.0 + relative_lift)
    if relative_lift == 0 or not 0 < p_t < 1:
        raise ValueError(f"relative_lift: expected a non-zero lift keeping the rate in (0, 1), got {relative_lift!r}")
    if not 0 < control_share < 1:
        raise ValueError(f"control_share: expected 0 < share < 1, got {control_share!r}")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    per_member = p_t * (1 - p_t) / (1 - control_share) + baseline_rate * (1 - baseline_rate) / control_share
    return math.ceil(z * z * per_member / (p_t - baseline_rate) ** 2)
