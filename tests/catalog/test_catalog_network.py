"""Egress and bandwidth: the catalog's model and the inventory's overrides."""

from __future__ import annotations

import math
import random
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placer.catalog import (
    DEFAULT_GBPS,
    Catalog,
    default_catalog,
    link_for,
    load_inventory,
    resolve_inventory,
    specificity,
)
from placer.models import Link, Location

ONPREM = Location(provider="onprem", region="fra-dc1", country="DE")
ONPREM2 = Location(provider="onprem", region="muc-dc2", country="DE")


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return default_catalog()


def loc(key: str) -> Location:
    if key == "onprem:fra-dc1":
        return ONPREM
    if key == "onprem:muc-dc2":
        return ONPREM2
    return default_catalog().location(key)


@pytest.mark.parametrize(
    ("a", "b", "usd"),
    [
        ("aws:us-east-1", "aws:us-east-1", 0.0),  # same location: free
        ("onprem:fra-dc1", "onprem:fra-dc1", 0.0),
        ("aws:us-east-1", "aws:eu-central-1", 0.02),  # aws inter-region, any pair
        ("aws:eu-central-1", "aws:eu-west-1", 0.02),
        ("aws:us-east-1", "gcp:us-central1", 0.09),  # leaves aws for the internet
        ("aws:eu-central-1", "onprem:fra-dc1", 0.09),
        ("gcp:us-central1", "gcp:us-east4", 0.02),  # gcp same continent
        ("gcp:us-central1", "gcp:europe-west4", 0.08),  # gcp intercontinental
        ("gcp:europe-west4", "aws:eu-central-1", 0.12),  # gcp premium tier, first TiB
        ("azure:eastus", "azure:westus2", 0.02),
        ("azure:eastus", "azure:westeurope", 0.05),
        ("azure:eastus", "onprem:fra-dc1", 0.0875),
        ("onprem:fra-dc1", "aws:eu-central-1", 0.0),  # own uplink, ingress free
        ("onprem:fra-dc1", "onprem:muc-dc2", 0.0),
    ],
)
def test_catalog_egress_matrix(cat: Catalog, a: str, b: str, usd: float) -> None:
    price, gbps = cat.link(loc(a), loc(b))
    assert price == pytest.approx(usd)
    assert gbps == (math.inf if a == b else DEFAULT_GBPS)


def test_unknown_continent_counts_as_intercontinental(cat: Catalog) -> None:
    odd = Location(provider="gcp", region="elsewhere1", country="US")
    assert cat.link(loc("gcp:us-central1"), odd) == (0.08, DEFAULT_GBPS)


def test_link_for_without_overrides_is_the_catalog(cat: Catalog) -> None:
    a, b = loc("aws:us-east-1"), loc("gcp:us-central1")
    assert link_for((), cat, a, b) == cat.link(a, b)
    assert link_for((), None, a, b) == cat.link(a, b)


def _links(*specs: dict[str, object]) -> tuple[Link, ...]:
    return tuple(Link.model_validate(s) for s in specs)


def test_inventory_override_wins(cat: Catalog) -> None:
    links = _links({"from": "onprem:*", "to": "aws:*", "usd_per_gb": 0.02, "bandwidth": "1Gbps"})
    assert link_for(links, cat, ONPREM, loc("aws:eu-central-1")) == (0.02, 1.0)
    # symmetric by default: aws → on-prem uses it too
    assert link_for(links, cat, loc("aws:eu-central-1"), ONPREM) == (0.02, 1.0)
    # not matching: gcp keeps the catalog
    assert link_for(links, cat, ONPREM, loc("gcp:europe-west4")) == (0.0, DEFAULT_GBPS)


def test_asymmetric_link_applies_one_way(cat: Catalog) -> None:
    links = _links({"from": "aws:*", "to": "onprem:*", "usd_per_gb": 0.05, "symmetric": False})
    assert link_for(links, cat, loc("aws:us-east-1"), ONPREM)[0] == 0.05
    assert link_for(links, cat, ONPREM, loc("aws:us-east-1"))[0] == 0.0


def test_most_specific_link_wins_regardless_of_order(cat: Catalog) -> None:
    specific = {"from": "onprem:fra-dc1", "to": "aws:eu-central-1", "usd_per_gb": 0.01}
    broad = {"from": "onprem:*", "to": "*", "usd_per_gb": 0.03}
    a, b = ONPREM, loc("aws:eu-central-1")
    assert link_for(_links(specific, broad), cat, a, b)[0] == 0.01
    assert link_for(_links(broad, specific), cat, a, b)[0] == 0.01
    assert link_for(_links(broad, specific), cat, a, loc("aws:us-east-1"))[0] == 0.03


def test_specificity_tie_goes_to_the_later_entry(cat: Catalog) -> None:
    first = {"from": "aws:eu-*", "to": "onprem:*", "usd_per_gb": 0.04}
    second = {"from": "onprem:*", "to": "aws:eu-*", "usd_per_gb": 0.06}
    a, b = loc("aws:eu-central-1"), ONPREM
    assert specificity("aws:eu-*") + specificity("onprem:*") == 14
    assert link_for(_links(first, second), cat, a, b)[0] == 0.06
    assert link_for(_links(second, first), cat, a, b)[0] == 0.04


def test_each_figure_is_overridden_on_its_own(cat: Catalog) -> None:
    links = _links(
        {"from": "onprem:*", "to": "*", "bandwidth": "2Gbps"},
        {"from": "onprem:fra-dc1", "to": "aws:eu-central-1", "usd_per_gb": 0.01},
    )
    assert link_for(links, cat, ONPREM, loc("aws:eu-central-1")) == (0.01, 2.0)


def test_same_location_ignores_overrides(cat: Catalog) -> None:
    links = _links({"from": "*", "to": "*", "usd_per_gb": 1.0, "bandwidth": 1})
    a = loc("aws:us-east-1")
    assert link_for(links, cat, a, a) == (0.0, math.inf)


@pytest.mark.parametrize(
    ("pattern", "n"),
    [("*", 0), ("aws:*", 4), ("aws:eu-?entral-1", 15), ("gcp:europe-west[14]", 16)],
)
def test_specificity(pattern: str, n: int) -> None:
    assert specificity(pattern) == n


def test_the_documented_inventory_example(tmp_path: Path) -> None:
    """docs/catalog.md's inventory example loads and gives the figures the page states."""
    doc = Path(__file__).parents[2] / "docs" / "catalog.md"
    if not doc.exists():  # pragma: no cover - docs are not shipped with the package
        pytest.skip("docs/catalog.md not present")
    block = doc.read_text("utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "inventory.yaml"
    path.write_text(block, encoding="utf-8")
    inv = load_inventory(path)
    cat = default_catalog()
    sites = {s.name: s for s in resolve_inventory(inv, cat)}
    fra = sites["fra-dc"].location
    assert link_for(inv.network, cat, fra, cat.location("aws:eu-central-1")) == (0.02, 10.0)
    assert link_for(inv.network, cat, fra, cat.location("gcp:europe-west4")) == (0.0, 2.0)
    assert link_for(inv.network, cat, cat.location("aws:us-east-1"), fra) == (0.02, 2.0)
    assert sites["aws-use1"].offers[0].on_demand == 40.0
    assert sites["aws-fra"].provisioning_h == pytest.approx(10 / 60)


_PATTERNS = ("*", "onprem:*", "onprem:fra-dc1", "aws:*", "aws:eu-*", "aws:eu-central-1", "gcp:*")


@given(
    st.lists(
        st.tuples(st.sampled_from(_PATTERNS), st.sampled_from(_PATTERNS), st.booleans()),
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_link_for_matches_a_brute_force_reference(
    specs: list[tuple[str, str, bool]], rnd: random.Random
) -> None:
    cat = default_catalog()
    a, b = ONPREM, cat.location("aws:eu-central-1")
    links = [
        Link.model_validate({"from": f, "to": t, "symmetric": sym, "usd_per_gb": i / 100})
        for i, (f, t, sym) in enumerate(specs)
    ]
    # Reference: every matching link, ranked by (specificity, position); the catalog if none.
    ranked = [
        (specificity(f) + specificity(t), i)
        for i, (f, t, sym) in enumerate(specs)
        if (fnmatchcase(a.key, f) and fnmatchcase(b.key, t))
        or (sym and fnmatchcase(b.key, f) and fnmatchcase(a.key, t))
    ]
    expected = max(ranked)[1] / 100 if ranked else cat.link(a, b)[0]
    assert link_for(links, cat, a, b) == (expected, DEFAULT_GBPS)
    # Among links of distinct specificity, their order does not matter.
    scores = [specificity(f) + specificity(t) for f, t, _ in specs]
    if len(set(scores)) == len(scores):
        shuffled = links[:]
        rnd.shuffle(shuffled)
        assert link_for(shuffled, cat, a, b) == link_for(links, cat, a, b)
