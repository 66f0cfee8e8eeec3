"""Egress and bandwidth: the catalog's model and the inventory's overrides."""

from __future__ import annotations

import math
import random
import textwrap
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
from placer.catalog._inventory import network_problems
from placer.errors import InventoryError
from placer.models import Inventory, Link, Location

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


def test_at_equal_specificity_the_written_direction_beats_the_default_symmetry(
        cat: Catalog) -> None:
    first = {"from": "aws:eu-*", "to": "onprem:*", "usd_per_gb": 0.04}
    second = {"from": "onprem:*", "to": "aws:eu-*", "usd_per_gb": 0.06}
    a, b = loc("aws:eu-central-1"), ONPREM
    assert specificity("aws:eu-*") + specificity("onprem:*") == 14
    for links in (_links(first, second), _links(second, first)):  # order does not matter
        assert link_for(links, cat, a, b)[0] == 0.04
        assert link_for(links, cat, b, a)[0] == 0.06


def test_specificity_comes_before_direction(cat: Catalog) -> None:
    # A Direct Connect line named both ways beats a broad one-way entry in either direction.
    line = {"from": "onprem:fra-dc1", "to": "aws:eu-central-1", "usd_per_gb": 0.01}
    broad = {"from": "aws:*", "to": "onprem:*", "usd_per_gb": 0.05, "symmetric": False}
    a, b = loc("aws:eu-central-1"), ONPREM
    assert link_for(_links(broad, line), cat, a, b)[0] == 0.01
    assert link_for(_links(line, broad), cat, a, b)[0] == 0.01
    assert link_for(_links(line, broad), cat, loc("aws:us-east-1"), ONPREM)[0] == 0.05


@pytest.mark.parametrize("entries", [
    # each other's reverse, `symmetric: true` written on both: both state both directions
    ({"from": "aws:us-east-1", "to": "aws:eu-central-1", "usd_per_gb": 0.5, "symmetric": True},
     {"from": "aws:eu-central-1", "to": "aws:us-east-1", "usd_per_gb": 0.01, "symmetric": True}),
    # the same from/to twice
    ({"from": "aws:us-east-1", "to": "aws:eu-central-1", "usd_per_gb": 0.5},
     {"from": "aws:us-east-1", "to": "aws:eu-central-1", "usd_per_gb": 0.01,
      "symmetric": False}),
])
def test_two_entries_tied_with_different_figures_are_refused(
        cat: Catalog, entries: tuple[dict[str, object], ...]) -> None:
    links = _links(*entries)
    with pytest.raises(InventoryError) as info:
        link_for(links, cat, loc("aws:us-east-1"), loc("aws:eu-central-1"))
    [detail] = info.value.details
    assert detail.field == "network[1]"
    assert "network[1] (" in detail.msg and "contradicts network[0] (" in detail.msg
    assert network_problems(links, ["aws:us-east-1", "aws:eu-central-1"])


def test_a_written_symmetric_true_outranks_the_default_symmetry_only(cat: Catalog) -> None:
    # Stated both ways here, stated one way there: A → B is the first's alone, B → A is a
    # contradiction (the first says $0.5 for it as plainly as the second says $0.01).
    links = _links(
        {"from": "aws:us-east-1", "to": "aws:eu-central-1", "usd_per_gb": 0.5, "symmetric": True},
        {"from": "aws:eu-central-1", "to": "aws:us-east-1", "usd_per_gb": 0.01})
    a, b = loc("aws:us-east-1"), loc("aws:eu-central-1")
    assert link_for(links, cat, a, b)[0] == 0.5
    with pytest.raises(InventoryError, match="contradicts"):
        link_for(links, cat, b, a)


def test_equal_figures_and_different_figures_are_no_conflict(cat: Catalog) -> None:
    links = _links(
        {"from": "onprem:*", "to": "aws:*", "usd_per_gb": 0.02, "bandwidth": "1Gbps"},
        {"from": "onprem:*", "to": "aws:*", "usd_per_gb": 0.02},
        {"from": "onprem:*", "to": "aws:*", "bandwidth": "1Gbps"},
        {"from": "aws:*", "to": "onprem:*", "usd_per_gb": 0.09})
    assert link_for(links, cat, ONPREM, loc("aws:us-east-1")) == (0.02, 1.0)
    assert link_for(links, cat, loc("aws:us-east-1"), ONPREM) == (0.09, 1.0)
    assert network_problems(links, ["onprem:fra-dc1", "aws:us-east-1"]) == []


def test_a_conflict_is_an_inventory_error_at_load_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent("""
        sites:
          aws-fra:
            location: aws:eu-central-1
        network:
          - {from: "aws:us-east-1", to: "aws:eu-central-1", usd_per_gb: 0.50, symmetric: true}
          - {from: "onprem:*", to: "*", bandwidth: 2Gbps}
          - {from: "aws:eu-central-1", to: "aws:us-east-1", usd_per_gb: 0.01, symmetric: true}
          - {from: "onprem:*", to: "*", bandwidth: 3Gbps}
    """).lstrip(), encoding="utf-8")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert [(d.line, d.field) for d in info.value.details] == [
        (7, "network[2]"), (8, "network[3]")]
    first, second = (d.msg for d in info.value.details)
    assert first.startswith(
        "network[2] (aws:eu-central-1 → aws:us-east-1, usd_per_gb 0.01) at line 7 contradicts "
        "network[0] (aws:us-east-1 → aws:eu-central-1, usd_per_gb 0.5) at line 5: both set "
        "usd_per_gb from aws:")
    assert "network[3] (onprem:* → *, bandwidth 3) at line 8 contradicts network[1] " \
        "(onprem:* → *, bandwidth 2) at line 6" in second


def test_an_unwritten_symmetric_stays_unwritten_through_a_dump(cat: Catalog) -> None:
    # The journal stores inventories as JSON and the executor reloads them on resume: the
    # defaulted `symmetric` must not come back as a written one (which would then contradict).
    inv = Inventory.model_validate({"sites": {"aws-fra": {"location": "aws:eu-central-1"}},
                                    "network": [
        {"from": "aws:us-east-1", "to": "aws:eu-central-1", "usd_per_gb": 0.5},
        {"from": "aws:eu-central-1", "to": "aws:us-east-1", "usd_per_gb": 0.01},
        {"from": "onprem:*", "to": "*", "bandwidth": 2, "symmetric": True}]})
    again = Inventory.model_validate(inv.model_dump(mode="json", by_alias=True))
    assert again == inv
    assert [link.symmetric_written for link in again.network] == [False, False, True]
    resolve_inventory(again, cat)  # no contradiction appeared
    a, b = cat.location("aws:us-east-1"), cat.location("aws:eu-central-1")
    assert link_for(again.network, cat, a, b)[0] == 0.5


def test_a_one_tb_read_is_priced_by_its_own_direction(tmp_path: Path) -> None:
    """Regression (issue 9, hole 6): `A → B $0.50/GB` then `B → A $0.01/GB`, both symmetric
    by default; the later entry used to replace the earlier both ways, pricing a 1 TB read
    from A at B at $10 instead of $500."""
    import placer
    from placer.models import Dataset
    from tests.builders import job, pipeline

    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent("""
        sites:
          aws-fra:
            location: aws:eu-central-1
        network:
          - {from: "aws:us-east-1", to: "aws:eu-central-1", usd_per_gb: 0.50}
          - {from: "aws:eu-central-1", to: "aws:us-east-1", usd_per_gb: 0.01}
    """).lstrip(), encoding="utf-8")
    inventory = load_inventory(path)
    corpus = Dataset(name="corpus", uri="s3://corpus/", size="1TB", location="aws:us-east-1")
    train = job("train", inputs=("corpus",), gpu_types={"A100-40GB": 1.0})
    plan = placer.plan(pipeline(train, datasets=(corpus,)), inventory, None)
    assert plan.status == "placed", plan.reasons
    assert plan.jobs["train"].site == "aws-fra"
    assert plan.jobs["train"].transfer_usd == pytest.approx(500.0)


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
        st.tuples(st.sampled_from(_PATTERNS), st.sampled_from(_PATTERNS),
                  st.sampled_from((True, False, None))),  # None: `symmetric` not written
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_link_for_matches_a_brute_force_reference(
    specs: list[tuple[str, str, bool | None]], rnd: random.Random
) -> None:
    cat = default_catalog()
    a, b = ONPREM, cat.location("aws:eu-central-1")
    links = [
        Link.model_validate({"from": f, "to": t, "usd_per_gb": i / 100,
                             **({} if sym is None else {"symmetric": sym})})
        for i, (f, t, sym) in enumerate(specs)
    ]
    # Reference: every matching link ranked by (specificity, stated for this direction);
    # stated = matches as written, or by a written `symmetric: true`. Every price differs, so
    # two links tied at the top are a contradiction; the catalog if nothing matches.
    ranked = []
    for i, (f, t, sym) in enumerate(specs):
        if fnmatchcase(a.key, f) and fnmatchcase(b.key, t):
            ranked.append((specificity(f) + specificity(t), 1, i))
        elif sym is not False and fnmatchcase(b.key, f) and fnmatchcase(a.key, t):
            ranked.append((specificity(f) + specificity(t), int(sym is True), i))
    top = [r for r in ranked if r[:2] == max(ranked)[:2]] if ranked else []
    if len(top) > 1:
        with pytest.raises(InventoryError, match="contradicts"):
            link_for(links, cat, a, b)
        assert network_problems(links, [a.key, b.key])
        return
    expected = top[0][2] / 100 if top else cat.link(a, b)[0]
    assert link_for(links, cat, a, b) == (expected, DEFAULT_GBPS)
    # The order of the entries never matters.
    shuffled = links[:]
    rnd.shuffle(shuffled)
    assert link_for(shuffled, cat, a, b) == link_for(links, cat, a, b)
