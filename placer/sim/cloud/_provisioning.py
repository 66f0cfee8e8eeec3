"""The start-up delay of a cloud launch: from a node request to a worker ready to run.

The delay is lognormal per (site, spot), fitted to a p50 and a p90. The p50 is
the resolved site's figure (catalog default: node ready 180 s on-demand / 240 s spot, plus 45 s
for the Ray worker to join; ``provisioning_latency.csv``, SUGGESTED DEFAULT rows, labelled as
assumptions there). The p90 is the p50 times the ratio of the same rows' p90s: node p90 600 s /
900 s, plus 90 s for the join (the top of its stated 20-90 s range, our assumption). Adding
quantiles treats node boot and join as comonotone (a slow start is slow throughout), so the
whole delay is one lognormal with p50 225 s / p90 690 s on-demand and 285 s / 990 s on spot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from placer.errors import ConfigError

_Z90: Final = 1.2815515655446004
"""The standard normal's 0.9 quantile: a lognormal's p90 / p50 = exp(sigma * _Z90)."""

# provisioning_latency.csv, SUGGESTED DEFAULT rows (p90 of the join: top of 20-90 s, ours).
_ON_DEMAND_NODE_S: Final = (180.0, 600.0)
_SPOT_NODE_S: Final = (240.0, 900.0)
_RAY_JOIN_S: Final = (45.0, 90.0)


def _p90_over_p50(spot: bool) -> float:
    node = _SPOT_NODE_S if spot else _ON_DEMAND_NODE_S
    return (node[1] + _RAY_JOIN_S[1]) / (node[0] + _RAY_JOIN_S[0])


@dataclass(frozen=True, slots=True)
class Provisioning:
    """Hours from a node request to a worker ready to run: lognormal with this p50 and p90.

    ``p50_h == 0`` is the zero model (Starburst's assumption): every sample is 0 and no random
    number is drawn.
    """

    p50_h: float
    p90_h: float
    _mu: float = field(init=False, repr=False)
    _sigma: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (0.0 <= self.p50_h <= self.p90_h < math.inf):
            raise ConfigError(
                f"provisioning needs 0 <= p50 <= p90 < inf, got "
                f"p50={self.p50_h} h, p90={self.p90_h} h"
            )
        if self.p50_h == 0.0 and self.p90_h != 0.0:
            raise ConfigError("provisioning with p50 = 0 must have p90 = 0 (the zero model)")
        set_ = object.__setattr__
        set_(self, "_mu", math.log(self.p50_h) if self.p50_h > 0 else -math.inf)
        set_(self, "_sigma", math.log(self.p90_h / self.p50_h) / _Z90 if self.p50_h > 0 else 0.0)

    @classmethod
    def zero(cls) -> Provisioning:
        return cls(0.0, 0.0)

    @classmethod
    def from_p50(cls, p50_h: float, spot: bool) -> Provisioning:
        """The default shape (see the module docstring) scaled to a site's p50."""
        return cls(p50_h, p50_h * _p90_over_p50(spot))

    @property
    def mean_h(self) -> float:
        return 0.0 if self.p50_h == 0 else math.exp(self._mu + self._sigma**2 / 2)

    def sample(self, rng: np.random.Generator) -> float:
        if self.p50_h == 0.0:
            return 0.0
        return float(rng.lognormal(self._mu, self._sigma))
