"""Hypothesis strategies for the hunter: random worlds with their ground truth.

A *case* is plain data (it is also the corpus format, see ``corpus/README.md``)::

    pipeline:  the pipeline YAML placer reads (names, spelled tag values, inputs, outputs)
    inventory: the inventory YAML placer reads
    policies:  {relative path: policy document (a mapping) or raw text}: the policy folder
    truth:     what the generator knows before it spells anything (the oracle's only input)
    faults:    what goes wrong during the run

The generator first decides the truth (a dataset's residency is ``EU``; a rule forbids
``aws:eu-central-1``; every policy file in the folder is in force) and then writes it the way a
user might: ``"ＥＵ"``, ``" EU"``, ``"ЕU"`` with a Cyrillic Е, a typo in a region, a policy file
called ``sub/p1.YML``. Names are drawn from small pools designed to collide (a dataset
``prep.features`` beside job ``prep``'s output ``features``, jobs with dots, case twins).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from tests.hunter.oracle import cloud_regions

GPU = "A100-80GB"

# On-prem data centres (site name, location, country).
ONPREM: tuple[tuple[str, str, str], ...] = (
    ("fra-dc", "onprem:fra-dc1", "DE"),
    ("par-dc", "onprem:par-dc1", "FR"),
    ("nyc-dc", "onprem:nyc-dc1", "US"),
    ("zrh-dc", "onprem:zrh-dc1", "CH"),
    ("lon-dc", "onprem:lon-dc1", "GB"),
    ("osl-dc", "onprem:osl-dc1", "NO"),
)
# Cloud regions of the embedded catalog: EEA, the UK and Switzerland (adequacy, not EEA), US.
CLOUD: tuple[str, ...] = tuple(k for k in (
    "aws:eu-central-1", "aws:eu-west-1", "aws:eu-west-2", "aws:eu-central-2", "aws:eu-north-1",
    "aws:us-east-1", "aws:us-west-2", "aws:ap-southeast-1", "gcp:europe-west4",
    "gcp:europe-west3", "gcp:europe-west2", "gcp:europe-west6", "gcp:us-central1",
    "azure:germanywestcentral", "azure:westeurope", "azure:uksouth", "azure:switzerlandnorth",
    "azure:eastus", "azure:norwayeast",
) if k in cloud_regions())

RESIDENCY = ("EU", "US", "DE", "CH", "GB")
CLASSIFICATION = ("pii", "public", "internal")
PRIVATE = ("true", "false")
TAG_VALUES: dict[str, tuple[str, ...]] = {
    "residency": RESIDENCY, "classification": CLASSIFICATION, "private": PRIVATE,
}
LABELS: dict[str, tuple[str, ...]] = {"team": ("ml", "research"), "private": PRIVATE}

JOB_NAMES = ("prep", "train", "eval", "score", "prep-1", "prep_1", "embed", "a", "tune",
             "export", "clean", "label", "merge", "fit")
DOTTED_JOB_NAMES = ("prep.v2", "a.b", "train.eu")
DATASET_NAMES = ("eu-raw", "raw", "web", "eu_raw", "features", "notes", "clicks", "eu-raw.v1",
                 "train-set", "model", "eu-raw1")
OUTPUT_NAMES = ("features", "model", "out", "v1", "ckpt", "raw")
SET_NAMES = ("eea", "onprem", "europe", "safe", "private-sites")


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True once in ``one_in`` draws; shrinks to False (a minimal example stays plain)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


@st.composite
def hostilities(draw: st.DrawFn) -> dict[str, bool]:
    """Which inputs placer must refuse this case may contain. Rare on purpose: a refusal is a
    pass, so most cases stay acceptable and reach a run, where the hunting happens."""
    return {"invisible": rarely(draw, 8),  # U+200B & co. in tags
            "collisions": rarely(draw, 3),  # names that collide (prep.features, case twins)
            "typos": rarely(draw, 6)}  # regions and jurisdictions nobody has


# -- spelling -------------------------------------------------------------------------------------
# Look-alikes from Unicode's confusables list (UTS #39): Cyrillic and Greek letters that look
# like Latin ones. Written out here, independently of placer.tags.
LOOKALIKE = {
    "A": "\u0410", "B": "\u0412", "C": "\u0421", "E": "\u0415", "H": "\u041d", "I": "\u0406",
    "K": "\u041a", "M": "\u041c", "O": "\u041e", "P": "\u0420", "S": "\u0405", "T": "\u0422",
    "X": "\u0425", "Y": "\u03a5", "Z": "\u0396", "N": "\u039d",
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "o": "\u043e", "p": "\u0440",
    "s": "\u0455", "x": "\u0445", "y": "\u0443",
}
# Spaces NFKC turns into U+0020 (or that are plain whitespace), trimmed by placer.
SPACES = (" ", "\u00a0", "\u2003", "\u3000", "\u2009", "\t")
# Characters placer must refuse in a tag: zero-width, joiners, BOM, soft hyphen, bidi controls.
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad", "\u2060", "\u202e")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c in string.ascii_letters + string.digits else c
                   for c in text)


def lookalike(text: str, mask: int) -> str:
    """Replace the letters selected by ``mask`` (bit i → letter i) that have a look-alike."""
    out, bit = [], 0
    for c in text:
        if c in LOOKALIKE:
            out.append(LOOKALIKE[c] if mask >> bit & 1 else c)
            bit += 1
        else:
            out.append(c)
    return "".join(out)


def has_lookalike(text: str) -> bool:
    return any(c in LOOKALIKE for c in text)


SPELLINGS = ("plain", "plain", "plain", "case", "space", "fullwidth", "lookalike", "mixed")
HOSTILE_SPELLINGS = (*SPELLINGS, "invisible")


@st.composite
def spelled(draw: st.DrawFn, value: str, kinds: Sequence[str] = SPELLINGS) -> str:
    """``value`` as a user might write it; every spelling means ``value`` (invisible characters
    aside, which placer must refuse)."""
    kind = draw(st.sampled_from(kinds))
    if kind == "case":
        return draw(st.sampled_from((value.lower(), value.upper(), value.title(),
                                     value.swapcase())))
    if kind == "space":
        pad = draw(st.sampled_from(SPACES))
        return draw(st.sampled_from((pad + value, value + pad, pad + value + pad)))
    if kind == "fullwidth":
        return fullwidth(value)
    if kind == "lookalike" and has_lookalike(value):
        return lookalike(value, draw(st.integers(1, 7)))
    if kind == "mixed":
        v = draw(st.sampled_from((value.lower(), value)))
        v = lookalike(v, draw(st.integers(0, 7))) if draw(st.booleans()) else fullwidth(v)
        return draw(st.sampled_from(SPACES)) + v
    if kind == "invisible":
        pos = draw(st.integers(0, len(value)))
        return value[:pos] + draw(st.sampled_from(INVISIBLE)) + value[pos:]
    return value


def spelled_empty() -> st.SearchStrategy[str]:
    return st.sampled_from(("", " ", "\u00a0", "\u3000", "\u2003 "))


KEY_SPELLINGS = ("plain",) * 6 + ("case", "fullwidth", "space", "lookalike")


# -- inventory ------------------------------------------------------------------------------------
def _site_name(draw: st.DrawFn, base: str, taken: set[str]) -> str:
    options = [base, base + "1", base.upper(), base.replace("-", "_"), base.replace("-", ".")]
    name = draw(st.sampled_from(options))
    while name in taken:
        name += "x"
    taken.add(name)
    return name


@st.composite
def inventories(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inventory YAML data, truth sites)."""
    onprem = draw(st.lists(st.sampled_from(range(len(ONPREM))), unique=True, max_size=3))
    cloud = draw(st.lists(st.sampled_from(range(len(CLOUD))), unique=True,
                          min_size=1 if len(onprem) < 2 else 0, max_size=4))
    if len(onprem) + len(cloud) < 2:
        cloud.append(next(i for i in range(len(CLOUD)) if i not in cloud))
    taken: set[str] = set()
    sites: dict[str, Any] = {}
    truth: dict[str, Any] = {}
    for i in onprem:
        base, loc, country = ONPREM[i]
        name = _site_name(draw, base, taken)
        extra = ["SOVEREIGN"] if rarely(draw, 5) else []
        spec: dict[str, Any] = {"location": loc, "country": country,
                                "pools": [{"gpu": GPU, "count": 64,
                                           "cost_per_gpu_hour": draw(st.sampled_from(
                                               (0.5, 1.0, 2.0, 3.5, 6.0)))}]}
        if extra:
            spec["jurisdictions"] = extra
        sites[name] = spec
        truth[name] = {"location": loc, "country": country, "jurisdictions": extra}
    for i in cloud:
        loc = CLOUD[i]
        name = _site_name(draw, loc.replace(":", "-"), taken)
        sites[name] = {"location": loc, "offers": [{
            "gpu": GPU, "gpus_per_node": 1,
            "on_demand": draw(st.sampled_from((1.0, 2.0, 3.0, 4.5, 8.0)))}]}
        truth[name] = {"location": loc, "jurisdictions": []}
    order = draw(st.permutations(list(sites)))
    return {"name": "hunt", "sites": {n: sites[n] for n in order}}, \
        {n: truth[n] for n in order}


# -- pipeline -------------------------------------------------------------------------------------
@st.composite
def tag_truth(draw: st.DrawFn, empty: bool = True) -> dict[str, str | None]:
    """A dataset's true tags: key → value, or None for a key written with an empty value.
    ``private`` is present on one dataset in six; the others are missing or empty now and then
    (which holds the jobs that read them, when the policies require the key)."""
    out: dict[str, str | None] = {}
    for key, values in TAG_VALUES.items():
        if key == "private":
            if rarely(draw, 6):
                out[key] = draw(st.sampled_from(values))
            continue
        if rarely(draw, 8):
            continue
        out[key] = None if empty and rarely(draw, 8) else draw(st.sampled_from(values))
    return out


@st.composite
def spell_tags(draw: st.DrawFn, truth: dict[str, str | None],
               kinds: Sequence[str] = SPELLINGS) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in truth.items():
        k = draw(spelled(key, KEY_SPELLINGS))
        out[k] = draw(spelled_empty()) if value is None else draw(spelled(value, kinds))
    return out


def _rename_job(jobs: dict[str, Any], old: str, new: str) -> None:
    """Rename a job in place, keeping declaration order and every reference to it."""
    refs = {f"{old}.{o}": f"{new}.{o}" for o in jobs[old]["outputs"]}
    items = [(new if n == old else n, spec) for n, spec in jobs.items()]
    jobs.clear()
    jobs.update(items)
    for spec in jobs.values():
        spec["inputs"] = [refs.get(r, r) for r in spec["inputs"]]
        spec["after"] = [new if r == old else r for r in spec["after"]]


def _rename_refs(jobs: dict[str, Any], old: str, new: str) -> None:
    for spec in jobs.values():
        spec["inputs"] = [new if r == old else r for r in spec["inputs"]]


@st.composite
def pipelines(draw: st.DrawFn, site_locations: Sequence[str], max_jobs: int = 12,
              hostile: dict[str, bool] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(pipeline YAML data, truth datasets, truth jobs)."""
    hostile = hostile or {}
    n_ds = draw(st.integers(0, 6))
    ds_names = draw(st.lists(st.sampled_from(DATASET_NAMES), min_size=n_ds, max_size=n_ds,
                             unique=True))
    where = [*site_locations, *site_locations, *CLOUD[:4]]
    datasets: dict[str, Any] = {
        d: {"location": None if rarely(draw, 12) else draw(st.sampled_from(where)),
            "tags": draw(tag_truth())}
        for d in ds_names}

    n_jobs = draw(st.integers(1, max_jobs))
    names = draw(st.lists(st.sampled_from(JOB_NAMES), min_size=n_jobs, max_size=n_jobs,
                          unique=True))
    if rarely(draw, 5):  # a job name with a dot in it
        names[draw(st.integers(0, n_jobs - 1))] = draw(st.sampled_from(DOTTED_JOB_NAMES))
        names = list(dict.fromkeys(names))
    chain = draw(st.booleans())
    jobs: dict[str, Any] = {}
    for i, name in enumerate(names):
        outputs = draw(st.lists(st.sampled_from(OUTPUT_NAMES), unique=True, max_size=2,
                                min_size=1 if chain else 0))
        refs = ds_names + [f"{j}.{o}" for j in names[:i] for o in jobs[j]["outputs"]]
        inputs = draw(st.lists(st.sampled_from(refs), unique=True, max_size=3)) if refs else []
        if chain and i > 0 and jobs[names[i - 1]]["outputs"]:
            prev = f"{names[i - 1]}.{jobs[names[i - 1]]['outputs'][0]}"
            if prev not in inputs:
                inputs.append(prev)
        after = draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=1)) \
            if i and rarely(draw, 4) else []
        labels: dict[str, str] = {}
        if rarely(draw, 4):
            key = draw(st.sampled_from(sorted(LABELS)))
            labels[key] = draw(st.sampled_from(LABELS[key]))
        jobs[name] = {"inputs": inputs, "outputs": outputs, "after": after, "labels": labels,
                      "hours": draw(st.sampled_from((1, 2, 4)))}

    # Names designed to collide.
    recipes = ("output-named-dataset", "output-named-dataset", "dotted-job", "case-twin",
               "dataset-is-job")
    for recipe in draw(st.lists(st.sampled_from(recipes), min_size=1, max_size=2)) \
            if hostile.get("collisions") else ():
        _collide(draw, recipe, datasets, jobs)

    data: dict[str, Any] = {"name": "hunt", "datasets": {}, "jobs": {}}
    for d, spec in datasets.items():
        out: dict[str, Any] = {"size": draw(st.sampled_from((1, 10, 50)))}
        if spec["location"] is not None:
            out["location"] = spec["location"]
        tags = draw(spell_tags(spec["tags"], HOSTILE_SPELLINGS if hostile.get("invisible")
                               else SPELLINGS))
        if tags:
            out["tags"] = tags
        data["datasets"][d] = out
    for j, spec in jobs.items():
        out = {"command": f"run {j}", "gpu_types": {GPU: spec.pop("hours")}}
        if spec["inputs"]:
            out["inputs"] = list(spec["inputs"])
        if spec["outputs"]:
            out["outputs"] = dict.fromkeys(spec["outputs"], 1)
        if spec["after"]:
            out["after"] = list(spec["after"])
        if spec["labels"]:
            out["labels"] = {k: draw(spelled(v, ("plain", "plain", "case", "space",
                                                  "fullwidth")))
                             for k, v in spec["labels"].items()}
        data["jobs"][j] = out
    return data, datasets, jobs


def _collide(draw: st.DrawFn, recipe: str, datasets: dict[str, Any],
             jobs: dict[str, Any]) -> None:
    order = list(jobs)
    producers = [j for j in order if jobs[j]["outputs"]]
    if recipe == "output-named-dataset" and producers and datasets:
        # Issue 9, hole 1: a dataset named like a job's output, read by a later job.
        j = draw(st.sampled_from(producers))
        o = draw(st.sampled_from(jobs[j]["outputs"]))
        d = draw(st.sampled_from(sorted(datasets)))
        new = f"{j}.{o}"
        if new in datasets or new in jobs:
            return
        datasets[new] = datasets.pop(d)
        _rename_refs(jobs, d, new)
        later = order[order.index(j) + 1:]
        if later:
            reader = draw(st.sampled_from(later))
            if new not in jobs[reader]["inputs"]:
                jobs[reader]["inputs"].append(new)
    elif recipe == "dotted-job" and len(order) >= 3:
        # Job `a` with output `b.c` and job `a.b` with output `c`: `a.b.c` names both.
        i = draw(st.integers(0, len(order) - 3))
        a, old, reader = order[i], order[i + 1], order[-1]
        mid = draw(st.sampled_from(("b", "v2", "out")))
        leaf = draw(st.sampled_from(("c", "model")))
        new = f"{a}.{mid}"
        if new in jobs or new in datasets:
            return
        _rename_job(jobs, old, new)
        if leaf not in jobs[new]["outputs"]:
            jobs[new]["outputs"].append(leaf)
        if f"{mid}.{leaf}" not in jobs[a]["outputs"]:
            jobs[a]["outputs"].append(f"{mid}.{leaf}")
        jobs[reader]["inputs"].append(f"{a}.{mid}.{leaf}")
    elif recipe == "case-twin" and datasets:
        d = draw(st.sampled_from(sorted(datasets)))
        twin = draw(st.sampled_from([d.swapcase(), d.upper(), d.capitalize(),
                                     *(j.swapcase() for j in order)]))
        if twin in datasets or twin in jobs or not twin:
            return
        datasets[twin] = dict(datasets[d], tags=dict(draw(tag_truth())))
        if order:
            reader = draw(st.sampled_from(order))
            jobs[reader]["inputs"].append(twin)
    elif recipe == "dataset-is-job" and datasets:
        d = draw(st.sampled_from(sorted(datasets)))
        j = draw(st.sampled_from(order))
        if j in datasets:
            return
        datasets[j] = datasets.pop(d)
        _rename_refs(jobs, d, j)


# -- policies -------------------------------------------------------------------------------------
def typo(region: str, draw: st.DrawFn) -> str | None:
    """A misspelt cloud region key that the catalog does not know (``eu-centrall-1``)."""
    provider, _, name = region.partition(":")
    letters = [k for k, c in enumerate(name) if c.isalpha()]
    k = draw(st.sampled_from(letters))
    how = draw(st.sampled_from(("double", "drop", "swap")))
    if how == "double":
        bad = name[:k + 1] + name[k:]
    elif how == "drop":
        bad = name[:k] + name[k + 1:]
    else:
        bad = name[:k] + name[k + 1:k + 2] + name[k] + name[k + 2:] if k + 1 < len(name) \
            else name + "x"
    out = f"{provider}:{bad}"
    return None if out in cloud_regions() or out == region else out


@st.composite
def patterns(draw: st.DrawFn, site_truth: dict[str, Any], typos: bool = False
             ) -> tuple[str, str]:
    """(truth pattern, spelled pattern); the spelling differs only by a region typo. With
    ``typos``, also regions misspelt and jurisdiction labels no site has."""
    locs = sorted({s["location"] for s in site_truth.values()})
    countries = sorted({s.get("country") or cloud_regions()[s["location"]][0]
                        for s in site_truth.values()} | {"DE", "US", "GB"})
    names = sorted(site_truth)
    kind = draw(st.sampled_from(("key", "key", "cloud", "provider", "country", "jurisdiction",
                                 "jurisdiction", "site", "glob")))
    if kind == "key":
        p = draw(st.sampled_from(locs))
    elif kind == "cloud":
        p = draw(st.sampled_from(CLOUD))
    elif kind == "provider":
        p = "provider:" + draw(st.sampled_from(("onprem", "aws", "gcp", "azure")))
    elif kind == "country":
        p = "country:" + draw(st.sampled_from(countries))
    elif kind == "jurisdiction":
        labels = {j for s in site_truth.values() for j in s.get("jurisdictions", ())}
        labels |= {j for s in site_truth.values() if not s["location"].startswith("onprem:")
                   for j in cloud_regions()[s["location"]][1]}
        if typos:
            labels |= {"SOVEREIGN", "EUROPE_NON_EEA"}
        p = "jurisdiction:" + draw(st.sampled_from(("EU", "EEA", "US", "DE", "GB", "CH",
                                                    *sorted(labels))))
    elif kind == "site":
        n = draw(st.sampled_from(names))
        p = "site:" + draw(st.sampled_from((n, n[:3] + "*")))
    else:
        p = draw(st.sampled_from(("aws:eu-*", "aws:us-*", "gcp:europe-*", "gcp:us-*",
                                  "azure:*europe*", "onprem:*", "aws:*", "azure:*",
                                  "onprem:fra-*", "*:*")))
        if p == "*:*":
            p = "aws:*"
    spelt = p
    if typos and p in cloud_regions() and rarely(draw, 3):
        spelt = typo(p, draw) or p  # issue 9, hole 5: aws:eu-centrall-1
    return p, spelt


@st.composite
def matches(draw: st.DrawFn, job_names: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(truth match, spelled match)."""
    kind = draw(st.sampled_from(("tag", "tag", "tag", "tag", "all", "star", "label", "jobs",
                                 "tag+label")))
    truth: dict[str, Any] = {}
    spelt: dict[str, Any] = {}
    if kind in ("tag", "tag+label"):
        key = draw(st.sampled_from(("residency", "residency", "classification", "private",
                                    "private")))
        values = draw(st.lists(st.sampled_from(TAG_VALUES[key]), min_size=1, max_size=2,
                               unique=True))
        truth["tags"] = {key: values}
        spelt["tags"] = {key: [draw(spelled(v, ("plain",) * 4 + ("case", "fullwidth")))
                               for v in values]}
    if kind == "star":
        key = draw(st.sampled_from(("residency", "classification", "private")))
        truth["tags"] = {key: ["*"]}
        spelt["tags"] = {key: "*"}
    if kind in ("label", "tag+label"):
        key = draw(st.sampled_from(sorted(LABELS)))
        v = draw(st.sampled_from(LABELS[key]))
        truth["labels"] = {key: [v]}
        spelt["labels"] = {key: v}
    if kind == "jobs":
        n = draw(st.sampled_from(list(job_names)))
        g = draw(st.sampled_from((n, n[:2] + "*", "*")))
        truth["jobs"] = spelt["jobs"] = [g]
    return truth, spelt


SUFFIXES = (".yaml", ".yaml", ".yml", ".YAML", ".YML", ".Yaml")
FOLDERS = ("", "", "", "sub/", "sub/deeper/", "EU/")


@st.composite
def policy_trees(draw: st.DrawFn, site_truth: dict[str, Any], job_names: Sequence[str],
                 typos: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """({path: policy document}, truth {required_tags, locations, rules})."""
    set_names = draw(st.lists(st.sampled_from(SET_NAMES), unique=True, max_size=3))
    sets_truth: dict[str, Any] = {}
    sets_spelt: dict[str, Any] = {}
    for name in set_names:
        inc = draw(st.lists(patterns(site_truth, typos), min_size=1, max_size=3))
        exc = draw(st.lists(patterns(site_truth, typos), max_size=2))
        sets_truth[name] = {"include": [t for t, _ in inc], "exclude": [t for t, _ in exc]}
        sets_spelt[name] = {"include": [s for _, s in inc]}
        if exc:
            sets_spelt[name]["exclude"] = [s for _, s in exc]
    rules_truth: list[dict[str, Any]] = []
    rules_spelt: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 6))):
        effect = draw(st.sampled_from(("forbid", "require", "require", "prefer")))
        m_truth, m_spelt = draw(matches(job_names))
        refs = draw(st.lists(st.one_of(patterns(site_truth, typos),
                                       st.sampled_from(set_names).map(lambda n: (n, n))
                                       if set_names else patterns(site_truth, typos)),
                             min_size=1, max_size=3))
        rid = f"r{i}-{effect}"
        rules_truth.append({"id": rid, "effect": effect, "match": m_truth,
                            "sites": [t for t, _ in refs]})
        spelt: dict[str, Any] = {"id": rid, "effect": effect, "match": m_spelt,
                                 "sites": [s for _, s in refs], "message": f"why {rid}"}
        if effect == "prefer":
            spelt["penalty"] = 5
        rules_spelt.append(spelt)
    required = draw(st.lists(st.sampled_from(("residency", "classification")), unique=True,
                             max_size=2))

    n_files = draw(st.integers(1, 4))
    docs: list[dict[str, Any]] = [{"apiVersion": "placer/v1", "kind": "PolicySet",
                                   "name": f"p{k}"} for k in range(n_files)]
    for name in set_names:
        docs[draw(st.integers(0, n_files - 1))].setdefault("locations", {})[name] = \
            sets_spelt[name]
    for rule in rules_spelt:
        docs[draw(st.integers(0, n_files - 1))].setdefault("rules", []).append(rule)
    for key in required:
        docs[draw(st.integers(0, n_files - 1))].setdefault("required_tags", []).append(key)
    tree: dict[str, Any] = {}
    for k, doc in enumerate(docs):
        path = draw(st.sampled_from(FOLDERS)) + f"p{k}" + draw(st.sampled_from(SUFFIXES))
        tree[path] = doc
    if rarely(draw, 6):
        tree["README.md"] = "Policies of the hunt. Not a policy file.\n"
    truth = {"required_tags": list(required), "locations": sets_truth, "rules": rules_truth}
    return tree, truth


# -- faults ---------------------------------------------------------------------------------------
@st.composite
def faults(draw: st.DrawFn, site_names: Sequence[str], job_names: Sequence[str],
           failover: bool = False) -> dict[str, Any]:
    """What goes wrong. ``failover``: at least one job's site goes down while the run is on."""
    events: list[dict[str, Any]] = []
    if failover:
        events.append({"tick": draw(st.integers(0, 12)),
                       "down_job": draw(st.sampled_from(list(job_names)))})
    for _ in range(draw(st.integers(0, 3))):
        tick = draw(st.integers(0, 24))
        kind = draw(st.sampled_from(("down_job", "down_job", "down", "up", "crash")))
        if kind == "down_job":
            events.append({"tick": tick, "down_job": draw(st.sampled_from(list(job_names)))})
        elif kind in ("down", "up"):
            events.append({"tick": tick, kind: draw(st.sampled_from(list(site_names)))})
        else:
            events.append({"tick": tick, "crash": True})
    kills = draw(st.lists(st.fixed_dictionaries({
        "point": st.sampled_from(("after_intent", "after_submit", "after_status")),
        "nth": st.integers(1, 8)}), max_size=2))
    outcomes = draw(st.dictionaries(st.sampled_from(list(job_names)), st.lists(
        st.sampled_from(("FAILED", "SUCCEEDED")), min_size=1, max_size=3), max_size=3))
    submit_errors = draw(st.dictionaries(st.sampled_from(list(job_names)), st.integers(1, 3),
                                         max_size=2))
    return {"events": sorted(events, key=lambda e: e["tick"]), "kills": kills,
            "outcomes": outcomes, "submit_errors": submit_errors,
            "drivers": draw(st.sampled_from((1, 1, 1, 1, 2))),
            "mover": draw(st.sampled_from((True, True, False)))}


# -- a whole case ---------------------------------------------------------------------------------
@st.composite
def cases(draw: st.DrawFn, max_jobs: int = 12, with_faults: bool = True,
          failover: bool = False) -> dict[str, Any]:
    hostile = draw(hostilities())
    inventory, site_truth = draw(inventories())
    locs = sorted({s["location"] for s in site_truth.values()})
    pipeline, ds_truth, job_truth = draw(pipelines(locs, max_jobs, hostile))
    tree, pol_truth = draw(policy_trees(site_truth, list(job_truth), hostile["typos"]))
    case: dict[str, Any] = {
        "pipeline": pipeline, "inventory": inventory, "policies": tree,
        "truth": {"sites": site_truth, "datasets": ds_truth, "jobs": job_truth, **pol_truth},
    }
    if with_faults:
        case["faults"] = draw(faults(list(site_truth), list(job_truth), failover))
    return case


# -- storage worlds (moto_server) -----------------------------------------------------------------
AWS_REGIONS = ("aws:eu-central-1", "aws:eu-west-1", "aws:eu-west-2", "aws:eu-central-2",
               "aws:us-east-1", "aws:us-west-2", "aws:eu-north-1")
ONPREM_STORES = 2  # on-prem stores (moto_servers) a storage world may use, one per site


def onprem_endpoint(k: int) -> str:
    """Placeholder for the URL of on-prem store ``k``, filled in by the hunt."""
    return f"{{onprem-endpoint-{k}}}"


@st.composite
def storage_cases(draw: st.DrawFn, max_jobs: int = 4) -> dict[str, Any]:
    """A world of S3 buckets: data buckets in random regions with tags spelt in random ways,
    and each site's output bucket. Buckets are named ``st*``/``data*`` here; the hunt gives
    them unique names. An on-prem site keeps its outputs on its own store (the second
    ``moto_server``, with ``storage_endpoint``), or in a bucket that is really on the cloud
    store (issue 9, hole 10), or nowhere."""
    hostile = draw(hostilities())
    buckets: dict[str, Any] = {}
    sites: dict[str, Any] = {}
    site_truth: dict[str, Any] = {}
    for loc in draw(st.lists(st.sampled_from(AWS_REGIONS), unique=True, min_size=1,
                             max_size=3)):
        where = draw(st.sampled_from(AWS_REGIONS)) if rarely(draw, 8) else loc
        b = f"st{len(buckets)}"
        buckets[b] = {"server": "cloud", "region": where.split(":", 1)[1], "truth": where,
                      "tags": {}, "objects": []}
        name = loc.replace(":", "-")
        sites[name] = {"location": loc, "storage": f"s3://{b}/placer", "offers": [{
            "gpu": GPU, "gpus_per_node": 1,
            "on_demand": draw(st.sampled_from((1.0, 2.0, 3.0, 4.5, 8.0)))}]}
        site_truth[name] = {"location": loc, "jurisdictions": []}
    for k, i in enumerate(draw(st.lists(st.sampled_from(range(len(ONPREM))), unique=True,
                                        max_size=ONPREM_STORES))):
        base, loc, country = ONPREM[i]
        spec: dict[str, Any] = {"location": loc, "country": country, "pools": [{
            "gpu": GPU, "count": 64,
            "cost_per_gpu_hour": draw(st.sampled_from((0.5, 1.0, 2.0, 3.5, 6.0)))}]}
        how = "cloud-bucket" if hostile["collisions"] and rarely(draw, 2) else \
            draw(st.sampled_from(("endpoint", "endpoint", "none")))
        b = f"st{len(buckets)}"
        if how == "endpoint":
            buckets[b] = {"server": f"onprem{k}", "region": None, "truth": loc, "tags": {},
                          "objects": []}
            spec["storage"] = f"s3://{b}/placer"
            spec["storage_endpoint"] = onprem_endpoint(k)
        elif how == "cloud-bucket":
            where = draw(st.sampled_from(AWS_REGIONS))
            buckets[b] = {"server": "cloud", "region": where.split(":", 1)[1], "truth": where,
                          "tags": {}, "objects": []}
            spec["storage"] = f"s3://{b}/placer"
        sites[base] = spec
        site_truth[base] = {"location": loc, "country": country, "jurisdictions": []}

    names = draw(st.lists(st.sampled_from(DATASET_NAMES), unique=True, min_size=1, max_size=3))
    datasets: dict[str, Any] = {}
    template: dict[str, Any] = {"name": "hunt", "datasets": {}, "jobs": {}}
    for k, d in enumerate(names):
        where = draw(st.sampled_from(AWS_REGIONS))
        truth = draw(tag_truth(empty=False))
        b = f"data{k}"
        # S3 trims tag values and keeps no empty ones: spell without spaces.
        tags = {draw(spelled(key, ("plain",) * 6 + ("case", "fullwidth", "lookalike"))):
                draw(spelled(str(v), ("plain", "plain", "case", "fullwidth", "lookalike",
                                      *(("invisible",) if hostile["invisible"] else ()))))
                for key, v in truth.items()}
        buckets[b] = {"server": "cloud", "region": where.split(":", 1)[1], "truth": where,
                      "tags": tags, "objects": ["data/part-0"]}
        datasets[d] = {"location": where, "tags": truth}
        template["datasets"][d] = {"uri": f"s3://{b}/data/", "size": 1}
    jobs: dict[str, Any] = {}
    job_names = draw(st.lists(st.sampled_from(JOB_NAMES), unique=True, min_size=1,
                              max_size=max_jobs))
    for i, j in enumerate(job_names):
        refs = names + [f"{p}.out" for p in job_names[:i]]
        inputs = draw(st.lists(st.sampled_from(refs), unique=True, min_size=1, max_size=2))
        if i and f"{job_names[i - 1]}.out" not in inputs and draw(st.booleans()):
            inputs.append(f"{job_names[i - 1]}.out")
        jobs[j] = {"inputs": inputs, "outputs": ["out"], "after": [], "labels": {}}
        template["jobs"][j] = {"command": f"run {j}", "gpu_types": {GPU: 1},
                               "inputs": inputs, "outputs": {"out": 1}}
    tree, pol_truth = draw(policy_trees(site_truth, job_names, hostile["typos"]))
    events = []
    if rarely(draw, 3):
        events.append({"tick": draw(st.integers(0, 10)),
                       "down_job": draw(st.sampled_from(job_names))})
    return {
        "storage": {"buckets": buckets},
        "pipeline": template, "inventory": {"name": "hunt", "sites": sites},
        "policies": tree,
        "truth": {"sites": site_truth, "datasets": datasets, "jobs": jobs, **pol_truth},
        "faults": {"events": events, "mover": True},
    }
