"""plan(pinned=, exclude_sites=): re-planning only ever narrows the eligible sets."""

from __future__ import annotations

import placer
from tests.executor.world import EU, US, inventory, policies, three_jobs


def test_excluding_a_site_moves_free_jobs_and_keeps_pinned_ones() -> None:
    p = placer.plan(three_jobs(), inventory(), policies(), pinned={"b": US},
                    exclude_sites=[US])
    assert p.status == "placed"
    assert {j: x.site for j, x in p.jobs.items()} == {"a": EU, "b": US, "c": EU}


def test_excluding_the_only_eligible_site_is_infeasible_with_a_reason() -> None:
    p = placer.plan(three_jobs(), inventory(), policies(), exclude_sites=[EU])
    assert p.status == "infeasible"
    assert p.reasons == ["a: every allowed site (eu-dc) is excluded; the others are rejected "
                         "by the policies"]


def test_pinning_to_a_site_the_policies_forbid_is_refused() -> None:
    p = placer.plan(three_jobs(), inventory(), policies(), pinned={"a": US})
    assert p.status == "infeasible"
    assert p.reasons == ["a: pinned to us-dc, which the policies do not allow for it"]
