"""Secrets are known by reference (a site's token_env / token_file), masked in display text only."""

from __future__ import annotations

from pathlib import Path

import pytest

import placer.journal
import placer.secrets
from placer.models import Inventory
from placer.secrets import Redactor, secret_values

TOKEN = "muc-5ecr3t-t0ken-do-not-leak"


def _sites(**clusters: dict[str, str]) -> Inventory:
    return Inventory.model_validate({"sites": {
        name: {"location": f"onprem:{name}-dc1", "country": "DE", "cluster": c,
               "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]}
        for name, c in clusters.items()}})


@pytest.fixture(autouse=True)
def _no_ray_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ray/auth_token


def test_a_sites_token_is_a_secret_whatever_its_variable_is_called(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MUNICH_RAY", TOKEN)  # not a name that looks secret
    (tmp_path / "fra.token").write_text("fra-t0ken-from-a-file\n")
    inv = _sites(muc={"backend": "k8s", "token_env": "MUNICH_RAY"},
                 fra={"backend": "k8s", "token_file": str(tmp_path / "fra.token")},
                 nyc={"backend": "k8s", "token_env": "UNSET_VAR_XYZ"},
                 ber={"backend": "k8s", "token_file": str(tmp_path / "missing")})
    found = secret_values(inv.sites)
    assert {TOKEN, "fra-t0ken-from-a-file"} <= found
    # The JSON form (as the journal stores an inventory) says the same.
    assert secret_values(inv.model_dump(mode="json")["sites"]) == found
    r = Redactor(found, from_env=False)
    assert r.text(f"Bearer {TOKEN} / fra-t0ken-from-a-file") == "Bearer *** / ***"


def test_a_ray_site_naming_no_token_uses_rays_own_fallbacks(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "ray-default-t0ken")
    (tmp_path / "home" / ".ray").mkdir(parents=True)
    (tmp_path / "home" / ".ray" / "auth_token").write_text("ray-file-t0ken")
    assert secret_values(_sites(a={"backend": "ray", "address": "http://h:8265"}).sites) == \
        {"ray-default-t0ken", "ray-file-t0ken"}
    assert secret_values(_sites(a={"backend": "k8s"}).sites) == set()


def test_the_redactor_lives_in_placer_secrets_and_is_still_importable_from_the_journal() -> None:
    assert placer.journal.Redactor is placer.secrets.Redactor
    r = Redactor(["short", "a-long-secret"], from_env=False)
    assert r.knows("a-long-secret") and not r.knows("short")  # too short to mask safely
    r.add("another-secret")
    assert r.text("a-long-secret another-secret short") == "*** *** short"
