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

from hypothesis import assume
from hypothesis import strategies as st

from tests.hunter.known import include_open
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

# The full language (issue 11): what jobs run, where datasets are, what stores report.
IMAGES = ("registry.example/deid:1.4", "registry.example/deid:1.4", "registry.example/deid:2.0",
          "registry.example/train:3", "ghcr.io/acme/etl:7")
COMMANDS = ("python deid.py", "python deid.py --strict", "python train.py --epochs 3")
URIS = ("s3://clinical-eu/notes/2024/a.parquet", "s3://clinical-eu/raw", "s3://clinical-us/x.csv",
        "gs://web-logs/2024/01/day.json", "s3://eu-raw/part-1", "file:///mnt/data/raw",
        "s3://clinical-eu/notes/b.parquet")
URI_GLOBS = ("s3://clinical-*/**", "s3://clinical-eu/**", "s3://clinical-*",
             "gs://web-logs/*/*/*.json", "s3://*/notes/**", "s3://eu-raw/*", "**/raw",
             "s3://clinical-eu/notes/*", "s3://clinical-??/**", "gs://**")
STORAGE_TAGS: dict[str, tuple[str, ...]] = {"data-class": ("phi", "open"),
                                            "region": ("EU", "US")}
REMOVALS: tuple[tuple[str, str], ...] = (("classification", "pii"), ("classification", "pii"),
                                         ("residency", "EU"), ("private", "true"),
                                         ("residency", "*"))
GHOST = "onprem:ghost-dc1"  # a location no inventory and no catalog knows


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True once in ``one_in`` draws; shrinks to False (a minimal example stays plain)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


@st.composite
def hostilities(draw: st.DrawFn) -> dict[str, bool]:
    """Which inputs placer must refuse this case may contain. Rare on purpose: a refusal is a
    pass, so most cases stay acceptable and reach a run, where the hunting happens."""
    return {"invisible": rarely(draw, 8),  # U+200B & co. in tags
            "collisions": rarely(draw, 5),  # names that collide (prep.features, case twins)
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


LOOKALIKE_CHARS = frozenset(LOOKALIKE.values())


def disguised(text: str) -> bool:
    """Whether ``text`` holds a look-alike letter (what widens must not see through it)."""
    return any(c in LOOKALIKE_CHARS for c in text)


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
def tag_truth(draw: st.DrawFn, empty: bool = True, complete: bool = False
              ) -> dict[str, str | None]:
    """A dataset's true tags: key → value, or None for a key written with an empty value.
    ``private`` is present on one dataset in six; the others are missing or empty now and then
    (which holds the jobs that read them, when the policies require the key), never with
    ``complete``."""
    out: dict[str, str | None] = {}
    for key, values in TAG_VALUES.items():
        if key == "private":
            if rarely(draw, 6):
                out[key] = draw(st.sampled_from(values))
            continue
        if not complete and rarely(draw, 8):
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
def spell_tags_disguised(draw: st.DrawFn, truth: dict[str, str | None],
                         kinds: Sequence[str] = SPELLINGS,
                         key_kinds: Sequence[str] = KEY_SPELLINGS,
                         key_look: dict[str, bool] | None = None
                         ) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Spelt tags, and which keys have a look-alike letter in their key or value spelling
    (``{"keys": [...], "values": [...]}``, empty lists left out). ``key_look``: whether each key
    is spelt with a look-alike (the same for every dataset of a case), instead of drawn per
    dataset from ``key_kinds``."""
    out: dict[str, str] = {}
    dis: dict[str, list[str]] = {}
    plain_keys = tuple(k for k in key_kinds if k != "lookalike") or ("plain",)
    for key, value in truth.items():
        if key_look is None:
            k = draw(spelled(key, key_kinds))
        else:
            k = draw(spelled(key, ("lookalike",) if key_look.get(key) else plain_keys))
        v = draw(spelled_empty()) if value is None else draw(spelled(value, kinds))
        out[k] = v
        if disguised(k):
            dis.setdefault("keys", []).append(key)
        if disguised(v):
            dis.setdefault("values", []).append(key)
    return out, dis


@st.composite
def key_looks(draw: st.DrawFn, often: bool = False) -> dict[str, bool]:
    """Which tag keys a case spells with a look-alike letter, in every dataset alike."""
    return {k: rarely(draw, 3 if often else 10) for k in TAG_VALUES}


LOOKALIKE_SPELLINGS = ("lookalike", "lookalike", "mixed", "plain", "case", "fullwidth", "space",
                       "lookalike")


@st.composite
def dataset_extras(draw: st.DrawFn, location: str | None, site_locations: Sequence[str]
                   ) -> dict[str, Any]:
    """A dataset's URI, the tags its store reports, and where its replicas are."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["uri"] = draw(st.sampled_from(URIS))
    if rarely(draw, 4):
        keys = draw(st.lists(st.sampled_from(sorted(STORAGE_TAGS)), min_size=1, unique=True))
        out["storage_tags"] = {k: draw(st.sampled_from(STORAGE_TAGS[k])) for k in keys}
    if location is not None and rarely(draw, 4):
        pool = [*site_locations, *CLOUD[:6]]
        out["replicas"] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2,
                                        unique=True))
        if rarely(draw, 16):
            out["replicas"].append(GHOST)
    return out


@st.composite
def pipelines(draw: st.DrawFn, site_locations: Sequence[str], max_jobs: int = 12,
              hostile: dict[str, bool] | None = None, language: bool = True,
              lookalikes: bool = False
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(pipeline YAML data, truth datasets, truth jobs). ``language``: datasets with URIs,
    store tags and replicas, jobs with images, commands and tag removals (issue 11).
    ``lookalikes``: tags spelt with look-alike letters much more often."""
    hostile = hostile or {}
    n_ds = draw(st.integers(0, 6))
    ds_names = draw(st.lists(st.sampled_from(DATASET_NAMES), min_size=n_ds, max_size=n_ds,
                             unique=True))
    where = [*site_locations, *site_locations, *CLOUD[:4]]
    datasets: dict[str, Any] = {}
    for d in ds_names:
        # Look-alikes show where nothing is held: every dataset known and tagged.
        loc = None if not lookalikes and rarely(draw, 12) else draw(st.sampled_from(where))
        datasets[d] = {"location": loc, "tags": draw(tag_truth(not lookalikes, lookalikes))}
        if language:
            datasets[d].update(draw(dataset_extras(loc, site_locations)))
            if lookalikes:
                datasets[d].pop("replicas", None)

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
        if language:
            deid = rarely(draw, 3)  # a de-identifier: declares removals, runs a deid image
            if deid or rarely(draw, 2):
                jobs[name]["image"] = draw(st.sampled_from(IMAGES[:3] if deid and not rarely(
                    draw, 4) else IMAGES))
            if rarely(draw, 3):
                jobs[name]["command"] = draw(st.sampled_from(COMMANDS))
            if deid or rarely(draw, 8):
                key, value = draw(st.sampled_from(REMOVALS))
                jobs[name]["removes_tags"] = {key: [value]}

    for spec in jobs.values():  # a de-identifier reads what it de-identifies, mostly
        for key, (value,) in spec.get("removes_tags", {}).items():
            fits = [d for d, ds in datasets.items() if ds["tags"].get(key) is not None
                    and value in ("*", ds["tags"][key])]
            if fits and draw(st.booleans()):
                d = draw(st.sampled_from(fits))
                if d not in spec["inputs"]:
                    spec["inputs"].append(d)

    # Names designed to collide.
    recipes = ("output-named-dataset", "output-named-dataset", "dotted-job", "case-twin",
               "dataset-is-job")
    for recipe in draw(st.lists(st.sampled_from(recipes), min_size=1, max_size=2)) \
            if hostile.get("collisions") else ():
        _collide(draw, recipe, datasets, jobs)

    key_look = None if include_open("lookalike-key-merge") else draw(key_looks(lookalikes))
    data: dict[str, Any] = {"name": "hunt", "datasets": {}, "jobs": {}}
    for d, spec in datasets.items():
        out: dict[str, Any] = {"size": draw(st.sampled_from((1, 10, 50)))}
        if spec["location"] is not None:
            out["location"] = spec["location"]
        kinds = HOSTILE_SPELLINGS if hostile.get("invisible") else \
            LOOKALIKE_SPELLINGS if lookalikes else SPELLINGS
        tags, dis = draw(spell_tags_disguised(
            spec["tags"], kinds, ("plain", "plain", "case", "lookalike", "lookalike")
            if lookalikes else KEY_SPELLINGS, key_look))
        if dis:
            spec["disguised"] = dis
        if tags:
            out["tags"] = tags
        if spec.get("uri"):
            out["uri"] = spec["uri"]
        if spec.get("storage_tags"):
            out["storage_tags"] = {draw(spelled(k, KEY_SPELLINGS)): draw(spelled(v, kinds))
                                   for k, v in spec["storage_tags"].items()}
        if spec.get("replicas"):
            out["replicas"] = list(spec["replicas"])
        data["datasets"][d] = out
    for j, spec in jobs.items():
        spec.setdefault("command", f"run {j}")
        out = {"command": spec["command"], "gpu_types": {GPU: spec.pop("hours")}}
        if spec.get("image"):
            out["image"] = spec["image"]
        if spec.get("removes_tags"):
            out["removes_tags"] = {draw(spelled(k, ("plain", "plain", "case"))):
                                   [draw(spelled(v, ("plain", "plain", "case", "fullwidth")))
                                    for v in vs]
                                   for k, vs in spec["removes_tags"].items()}
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


IMAGE_GLOBS = ("registry.example/deid:*", "registry.example/*", "ghcr.io/acme/etl:7", "*deid*")
COMMAND_GLOBS = ("python deid.py*", "python train.py*", "run *", "python *")
WIDEN_SPELLINGS = ("plain",) * 4 + ("case", "fullwidth", "space")


@st.composite
def matches(draw: st.DrawFn, job_names: Sequence[str], widen: bool = False,
            on_tags: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """(truth match, spelled match). ``widen``: for an allow or an exception (spelt in the
    ways strict matching folds: case, width, surrounding spaces). ``on_tags``: on tags."""
    kind = draw(st.sampled_from(("tag", "tag", "star", "tag+label") if on_tags else (
        "tag", "tag", "tag", "tag", "all", "star", "label", "jobs", "tag+label", "image",
        "command")))
    truth: dict[str, Any] = {}
    spelt: dict[str, Any] = {}
    kinds = WIDEN_SPELLINGS if widen else ("plain",) * 4 + ("case", "fullwidth")
    if kind in ("tag", "tag+label"):
        key = draw(st.sampled_from(("residency", "residency", "classification", "private",
                                    "private")))
        values = draw(st.lists(st.sampled_from(TAG_VALUES[key]), min_size=1, max_size=2,
                               unique=True))
        truth["tags"] = {key: values}
        spelt["tags"] = {key: [draw(spelled(v, kinds)) for v in values]}
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
    if kind == "image":
        truth["images"] = spelt["images"] = [draw(st.sampled_from(IMAGE_GLOBS))]
    if kind == "command":
        truth["commands"] = spelt["commands"] = [draw(st.sampled_from(COMMAND_GLOBS))]
    return truth, spelt


SUFFIXES = (".yaml", ".yaml", ".yml", ".YAML", ".YML", ".Yaml")
FOLDERS = ("", "", "", "sub/", "sub/deeper/", "EU/")
ORG, TEAM = "organisation", "team"
TAGGING_PLACES = ("jurisdiction:EEA", "jurisdiction:EU", "country:DE", "country:US",
                  "provider:onprem", "aws:eu-*", "aws:us-*", "gcp:europe-*", "provider:aws")
DERIVED = ({"residency": "EU"}, {"residency": "US"}, {"classification": "pii"},
           {"private": "true"}, {"classification": "public"})
TRANSFORM_REMOVES = ({"classification": ["pii"]}, {"classification": ["pii"], "private": ["true"]},
                     {"residency": ["*"], "classification": ["pii"]}, {"residency": ["EU"]},
                     {"private": ["true"]},
                     {"classification": ["pii", "internal"], "residency": ["EU"]})
TRANSFORM_MATCHES = ({"images": ["registry.example/deid:*"]}, {"images": ["*deid*"]},
                     {"images": ["registry.example/deid:1.4"]},
                     {"commands": ["python deid.py*"]}, {"commands": ["python deid.py"]},
                     {"images": ["registry.example/deid:*"], "jobs": ["prep*"]})
EXPIRES_IN = (-400, -30, -1, 0, 0, 1, 2, 30, 400)


def expires_placeholder(days: int) -> str:
    """How a policy file in a case writes an exception's ``expires``: relative to the case's
    decision day, filled in when the case is written out (so a corpus case never ages)."""
    return f"{{day{days:+d}}}"


@st.composite
def _site_refs(draw: st.DrawFn, site_truth: dict[str, Any], set_names: Sequence[str],
               typos: bool, min_size: int = 1) -> list[tuple[str, str]]:
    return draw(st.lists(st.one_of(patterns(site_truth, typos),
                                   st.sampled_from(list(set_names)).map(lambda n: (n, n))
                                   if set_names else patterns(site_truth, typos)),
                         min_size=min_size, max_size=3))


@st.composite
def _rule(draw: st.DrawFn, rid: str, effect: str, layer: str, site_truth: dict[str, Any],
          job_names: Sequence[str], set_names: Sequence[str], typos: bool, language: bool,
          on_tags: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    if effect == "allow" and not on_tags and draw(st.booleans()):
        m_truth, m_spelt = {}, {}
    else:
        m_truth, m_spelt = draw(matches(job_names, widen=effect == "allow",
                                        on_tags=on_tags and effect == "allow"))
    refs = draw(_site_refs(site_truth, set_names, typos))
    truth: dict[str, Any] = {"id": rid, "effect": effect, "match": m_truth,
                             "sites": [t for t, _ in refs], "layer": layer}
    spelt: dict[str, Any] = {"id": rid, "effect": effect, "match": m_spelt,
                             "sites": [s for _, s in refs], "message": f"why {rid}"}
    if effect == "prefer":
        spelt["penalty"] = 5
    if effect == "limit":
        cap = draw(st.sampled_from(("max_usd_per_job", "max_usd_per_hour", "budget")))
        spelt[cap] = {"usd": draw(st.sampled_from((5, 100, 10000))), "period": "month"} \
            if cap == "budget" else draw(st.sampled_from((1, 5, 50, 500)))
        if draw(st.booleans()):
            spelt["on_excess"] = "hold"
        if draw(st.booleans()):
            del spelt["sites"]
            truth["sites"] = ["provider:*"]
    if language and rarely(draw, 6):
        truth["mode"] = spelt["mode"] = draw(st.sampled_from(("audit", "audit", "warn")))
    if language and effect in ("forbid", "require") and rarely(draw, 8):
        truth["waivable"] = spelt["waivable"] = False
    return truth, spelt


@st.composite
def _exception(draw: st.DrawFn, xid: str, layer: str, rules: Sequence[dict[str, Any]],
               site_truth: dict[str, Any], job_names: Sequence[str], set_names: Sequence[str],
               refuse: list[str], on_tags: bool = False
               ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An exception of ``layer`` waiving hard rules it may waive; now and then one placer must
    refuse (a team waiving the organisation's rule, a rule marked not waivable)."""
    def may(r: dict[str, Any]) -> bool:
        return r["layer"] == layer and r.get("waivable", True)

    hard = [r for r in rules if r["effect"] in ("forbid", "require")]
    ok = [r for r in hard if may(r)]
    bad = [r for r in hard if not may(r) and (layer == TEAM or not r.get("waivable", True))]
    if bad and rarely(draw, 10):
        pick = draw(st.sampled_from(bad))
        waives = [pick["id"]]
        refuse.append(f"exception {xid} ({layer}) waives {pick['id']} ({pick['layer']}, "
                      f"waivable {pick.get('waivable', True)})")
    elif ok:
        waives = draw(st.lists(st.sampled_from([r["id"] for r in ok]), min_size=1, max_size=2,
                               unique=True))
    else:
        return None
    m_truth, m_spelt = ({}, {}) if not on_tags and rarely(draw, 3) else \
        draw(matches(job_names, widen=True, on_tags=on_tags))
    refs = draw(_site_refs(site_truth, set_names, False, 0)) if draw(st.booleans()) else []
    days = draw(st.sampled_from(EXPIRES_IN))
    truth = {"id": xid, "waives": waives, "match": m_truth, "sites": [t for t, _ in refs],
             "expires_in": days, "layer": layer}
    spelt: dict[str, Any] = {"id": xid, "waives": waives, "match": m_spelt,
                             "expires": expires_placeholder(days), "ticket": f"SEC-{len(xid)}1",
                             "approved_by": "dpo@example.com", "reason": "a migration"}
    if refs:
        spelt["sites"] = [s for _, s in refs]
    return truth, spelt


@st.composite
def _tagging(draw: st.DrawFn, tid: str, layer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = draw(st.lists(st.sampled_from(("uri", "uri", "storage_tags", "locations")),
                          min_size=1, max_size=2, unique=True))
    truth_m: dict[str, Any] = {}
    spelt_m: dict[str, Any] = {}
    if "uri" in parts:
        truth_m["uri"] = spelt_m["uri"] = draw(st.lists(st.sampled_from(URI_GLOBS), min_size=1,
                                                        max_size=2, unique=True))
    if "storage_tags" in parts:
        key = draw(st.sampled_from(sorted(STORAGE_TAGS)))
        values = draw(st.lists(st.sampled_from((*STORAGE_TAGS[key], "*")), min_size=1,
                               max_size=2, unique=True))
        truth_m["storage_tags"] = {key: values}
        spelt_m["storage_tags"] = {key: [draw(spelled(v, ("plain", "plain", "case")))
                                         if v != "*" else v for v in values]}
    if "locations" in parts:
        truth_m["locations"] = spelt_m["locations"] = draw(st.lists(
            st.sampled_from(TAGGING_PLACES), min_size=1, max_size=2, unique=True))
    tags = dict(draw(st.sampled_from(DERIVED)))
    return ({"id": tid, "match": truth_m, "tags": tags, "layer": layer},
            {"id": tid, "match": spelt_m, "tags": tags, "message": f"derived by {tid}"})


@st.composite
def _transform(draw: st.DrawFn, tid: str, layer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    match = {k: list(v) for k, v in draw(st.sampled_from(TRANSFORM_MATCHES)).items()}
    removes = {k: list(v) for k, v in draw(st.sampled_from(TRANSFORM_REMOVES)).items()}
    return ({"id": tid, "match": match, "removes": removes, "layer": layer},
            {"id": tid, "match": match, "removes": removes, "message": f"{tid} de-identifies"})


RULE_EFFECTS = ("forbid", "forbid", "require", "require", "require", "prefer", "allow", "limit")


@st.composite
def policy_trees(draw: st.DrawFn, site_truth: dict[str, Any], job_names: Sequence[str],
                 typos: bool = False, language: bool = True, team: bool | None = None,
                 exceptions: bool | None = None, hard: bool = False, deny: bool | None = None,
                 team_data: bool | None = None, on_tags: bool = False
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """({path: policy document}, truth {required_tags, locations, rules, defaults, exceptions,
    tagging, transforms, refuse}).

    ``language``: the whole language of issue 11 (allow and limit rules, modes, waivability,
    layers and defaults, exceptions, tagging rules, transforms); without it, the issue-9 one
    (forbid, require, prefer). ``team``/``exceptions``: force team files / at least one
    exception (``None``: now and then); ``hard``: at least one enforced, waivable forbid or
    require of the organisation; ``deny``: the organisation denies by default (``None``: now
    and then); ``team_data``: tagging rules and transforms, mostly in team files (what a team
    may add besides rules), or (``False``) only in the organisation's; ``on_tags``: allows and
    exceptions match on tags (where look-alikes matter)."""
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
    if team is None:
        team = language and rarely(draw, 4)
    layers = [ORG, TEAM] if team else [ORG]
    defaults: dict[str, str] = {}
    written_defaults: set[str] = set()
    for layer in layers:
        denies = language and rarely(draw, 5 if layer == ORG else 4)
        if layer == ORG and deny is not None:
            denies = deny
        defaults[layer] = "deny" if denies else "allow"
        if denies or (language and rarely(draw, 6)):
            written_defaults.add(layer)
    rules: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for layer in layers:
        prefix = "r" if layer == ORG else "t"
        effects = RULE_EFFECTS if language else ("forbid", "require", "require", "prefer")
        n = draw(st.integers(0, 6 if layer == ORG else 3))
        chosen = [draw(st.sampled_from(effects)) for _ in range(n)]
        if defaults[layer] == "deny":
            chosen += ["allow"] * draw(st.integers(1, 3))
        for i, effect in enumerate(chosen):
            rules.append(draw(_rule(f"{prefix}{i}-{effect}", effect, layer, site_truth,
                                    job_names, set_names, typos, language, on_tags)))
    if (hard or exceptions) and not any(
            t["effect"] in ("forbid", "require") and t["layer"] == ORG and "mode" not in t
            and t.get("waivable", True) for t, _ in rules):
        effect = draw(st.sampled_from(("forbid", "require")))
        t, spelt = draw(_rule(f"r9-{effect}", effect, ORG, site_truth, job_names, set_names,
                              typos, False))
        rules.append((t, spelt))
    rules_truth = [t for t, _ in rules]
    refuse: list[str] = []
    waivers: list[tuple[dict[str, Any], dict[str, Any]]] = []
    tagging: list[tuple[dict[str, Any], dict[str, Any]]] = []
    transforms: list[tuple[dict[str, Any], dict[str, Any]]] = []
    if language:
        n_exc = draw(st.integers(1, 3)) if exceptions else \
            (draw(st.integers(1, 2)) if exceptions is None and rarely(draw, 3) else 0)
        for i in range(n_exc):
            layer = draw(st.sampled_from(layers))
            w = draw(_exception(f"x{i}" if layer == ORG else f"tx{i}", layer, rules_truth,
                                site_truth, job_names, set_names, refuse, on_tags))
            if w is not None:
                waivers.append(w)
        data_layers = [*layers, TEAM, TEAM] if team_data else [ORG] if team_data is False \
            else layers
        for i in range(draw(st.integers(1, 2)) if rarely(draw, 2 if team_data else 3) else 0):
            tagging.append(draw(_tagging(f"tag{i}", draw(st.sampled_from(data_layers)))))
        for i in range(1 if team_data or rarely(draw, 2) else 0):
            transforms.append(draw(_transform(f"tf{i}", draw(st.sampled_from(data_layers)))))
    required = draw(st.lists(st.sampled_from(("residency", "classification")), unique=True,
                             max_size=2))

    n_files = {ORG: draw(st.integers(1, 4)), TEAM: draw(st.integers(1, 2)) if team else 0}
    docs: dict[str, list[dict[str, Any]]] = {ORG: [], TEAM: []}
    for layer in layers:
        for k in range(n_files[layer]):
            name = f"p{k}" if layer == ORG else f"t{k}"
            doc: dict[str, Any] = {"apiVersion": "placer/v1", "kind": "PolicySet", "name": name}
            if layer == TEAM or (language and rarely(draw, 8)):
                doc["layer"] = layer
            docs[layer].append(doc)

    def into(layer: str) -> dict[str, Any]:
        return docs[layer][draw(st.integers(0, n_files[layer] - 1))]

    for name in set_names:  # the organisation's files: org rules must find them without team
        into(ORG).setdefault("locations", {})[name] = sets_spelt[name]
    for (t, spelt) in rules:
        into(t["layer"]).setdefault("rules", []).append(spelt)
    for (t, spelt) in waivers:
        into(t["layer"]).setdefault("exceptions", []).append(spelt)
    for (t, spelt) in tagging:
        into(t["layer"]).setdefault("tagging", []).append(spelt)
    for (t, spelt) in transforms:
        into(t["layer"]).setdefault("transforms", []).append(spelt)
    required_in: dict[str, list[str]] = {ORG: [], TEAM: []}
    for key in required:
        layer = draw(st.sampled_from(layers))
        into(layer).setdefault("required_tags", []).append(key)
        required_in[layer].append(key)
    for layer in written_defaults:
        for doc in draw(st.lists(st.sampled_from(docs[layer]), min_size=1, unique_by=id)):
            doc["defaults"] = {"decision": defaults[layer]}
    tree: dict[str, Any] = {}
    for layer in layers:
        for doc in docs[layer]:
            path = draw(st.sampled_from(FOLDERS)) + doc["name"] + draw(st.sampled_from(SUFFIXES))
            tree[path] = doc
    if rarely(draw, 6):
        tree["README.md"] = "Policies of the hunt. Not a policy file.\n"
    truth: dict[str, Any] = {"required_tags": required_in[ORG], "locations": sets_truth,
                             "rules": rules_truth}
    if required_in[TEAM]:
        truth["team_required_tags"] = required_in[TEAM]
    if language:
        truth.update({"defaults": defaults, "exceptions": [t for t, _ in waivers],
                      "tagging": [t for t, _ in tagging],
                      "transforms": [t for t, _ in transforms], "refuse": refuse})
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
          failover: bool = False, language: bool = True, lookalikes: bool = False,
          team: bool | None = None, exceptions: bool | None = None, hard: bool = False,
          deny: bool | None = None, team_data: bool | None = None, day: str | None = None
          ) -> dict[str, Any]:
    """A whole case. ``day``: the decision day (ISO date) the case is judged on; ``None``:
    the day it runs (UTC), as the executor judges exceptions on the day it acts."""
    hostile = draw(hostilities())
    inventory, site_truth = draw(inventories())
    locs = sorted({s["location"] for s in site_truth.values()})
    pipeline, ds_truth, job_truth = draw(pipelines(locs, max_jobs, hostile, language,
                                                   lookalikes))
    tree, pol_truth = draw(policy_trees(site_truth, list(job_truth), hostile["typos"],
                                        language, team, exceptions, hard, deny, team_data,
                                        lookalikes))
    case: dict[str, Any] = {
        "pipeline": pipeline, "inventory": inventory, "policies": tree,
        "truth": {"sites": site_truth, "datasets": ds_truth, "jobs": job_truth, **pol_truth},
    }
    if day is not None:
        case["day"] = day
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
    key_look = None if include_open("lookalike-key-merge") else draw(key_looks())
    datasets: dict[str, Any] = {}
    template: dict[str, Any] = {"name": "hunt", "datasets": {}, "jobs": {}}
    for k, d in enumerate(names):
        where = draw(st.sampled_from(AWS_REGIONS))
        truth = draw(tag_truth(empty=False))
        b = f"data{k}"
        # S3 trims tag values and keeps no empty ones: spell without spaces.
        tags, dis = draw(spell_tags_disguised(
            truth, ("plain", "plain", "case", "fullwidth", "lookalike",
                    *(("invisible",) if hostile["invisible"] else ())),
            ("plain",) * 6 + ("case", "fullwidth", "lookalike"), key_look))
        buckets[b] = {"server": "cloud", "region": where.split(":", 1)[1], "truth": where,
                      "tags": tags, "objects": ["data/part-0"]}
        datasets[d] = {"location": where, "tags": truth}
        if dis:
            datasets[d]["disguised"] = dis
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


# -- the language properties (issue 11) ----------------------------------------------------------
def _permuted(draw: st.DrawFn, obj: Any, lists: bool = True) -> Any:
    """``obj`` with every mapping's keys and (``lists``) every list reordered (a policy file's
    lists are sets: rules, sites, values, waives, globs)."""
    if isinstance(obj, dict):
        keys = draw(st.permutations(list(obj)))
        return {k: _permuted(draw, obj[k], lists) for k in keys}
    if isinstance(obj, list):
        return [_permuted(draw, x, lists) for x in (draw(st.permutations(obj)) if lists
                                                     else obj)]
    return obj


@st.composite
def rearranged(draw: st.DrawFn, tree: dict[str, Any]) -> dict[str, Any]:
    """The same policies laid out anew: rules (and exceptions, tagging rules, transforms)
    shuffled within and moved between files of their layer, location sets and required tags
    moved between any files, files renamed, moved between sub-folders and written in another
    order, every list and mapping reordered."""
    items: dict[str, dict[str, list[Any]]] = {ORG: {}, TEAM: {}}
    sets: dict[str, Any] = {}
    required: dict[str, list[str]] = {ORG: [], TEAM: []}
    defaults: dict[str, Any] = {}
    others: list[str] = []
    for doc in tree.values():
        if isinstance(doc, str):
            others.append(doc)
            continue
        layer = doc.get("layer", ORG)
        for section in ("rules", "exceptions", "tagging", "transforms"):
            items[layer].setdefault(section, []).extend(doc.get(section, ()))
        sets.update(doc.get("locations", {}))
        required[layer] += doc.get("required_tags", [])
        if "defaults" in doc:
            defaults[layer] = doc["defaults"]
    layers = [ORG, TEAM] if any(items[TEAM].values()) or TEAM in defaults or required[TEAM] \
        else [ORG]
    docs: dict[str, list[dict[str, Any]]] = {}
    for layer in layers:
        docs[layer] = []
        for k in range(draw(st.integers(1, 4))):
            name = f"q{k}" if layer == ORG else f"u{k}"
            doc: dict[str, Any] = {"apiVersion": "placer/v1", "kind": "PolicySet", "name": name}
            if layer == TEAM or rarely(draw, 4):
                doc["layer"] = layer
            docs[layer].append(doc)
    every = [d for layer in layers for d in docs[layer]]

    def pick(pool: list[dict[str, Any]]) -> dict[str, Any]:
        return pool[draw(st.integers(0, len(pool) - 1))]

    inner = include_open("hash-inner-order")
    for layer in layers:
        for section, things in items[layer].items():
            for thing in draw(st.permutations(things)):
                pick(docs[layer]).setdefault(section, []).append(
                    _permuted(draw, thing, inner or section == "rules"))
    for name in draw(st.permutations(sorted(sets))):
        pick(every).setdefault("locations", {})[name] = _permuted(draw, sets[name])
    for layer in layers:  # a layer's required tags are checked against that layer's data
        for key in draw(st.permutations(required[layer])):
            pick(docs[layer]).setdefault("required_tags", []).append(key)
    for layer, value in defaults.items():
        for doc in draw(st.lists(st.sampled_from(docs[layer]), min_size=1, unique_by=id)):
            doc["defaults"] = dict(value)
    out: dict[str, Any] = {}
    for doc in draw(st.permutations(every)):
        keys = draw(st.permutations(list(doc)))
        path = draw(st.sampled_from((*FOLDERS, "a/b/c/", "team/"))) + doc["name"] + \
            draw(st.sampled_from(SUFFIXES))
        out[path] = {k: doc[k] for k in keys}
    for k, text in enumerate(others):
        out[f"notes/README-{k}.md"] = text
    return out


@st.composite
def shuffle_cases(draw: st.DrawFn, max_jobs: int = 6) -> dict[str, Any]:
    case = draw(cases(max_jobs=max_jobs, with_faults=False))
    case["variant"] = {"policies": draw(rearranged(case["policies"]))}
    return case


@st.composite
def expiry_cases(draw: st.DrawFn, max_jobs: int = 6) -> dict[str, Any]:
    case = draw(cases(max_jobs=max_jobs, with_faults=False, exceptions=True))
    ids = [e["id"] for e in case["truth"].get("exceptions", ())]
    assume(ids and not case["truth"].get("refuse"))
    case["judge"] = {"exception": draw(st.sampled_from(ids)),
                     "later": draw(st.sampled_from((2, 7, 31, 365)))}
    return case


@st.composite
def team_cases(draw: st.DrawFn, max_jobs: int = 6) -> dict[str, Any]:
    return draw(cases(max_jobs=max_jobs, with_faults=False, team=True,
                      team_data=draw(st.booleans()) if include_open("team-data-widens")
                      else False))


@st.composite
def audit_cases(draw: st.DrawFn, max_jobs: int = 6) -> dict[str, Any]:
    case = draw(cases(max_jobs=max_jobs, with_faults=False, hard=True))
    ids = [r["id"] for r in case["truth"]["rules"]
           if r["effect"] in ("forbid", "require") and r.get("mode", "enforce") == "enforce"]
    assume(ids)
    case["judge"] = {"rule": draw(st.sampled_from(ids)),
                     "mode": draw(st.sampled_from(("audit", "audit", "warn")))}
    return case


@st.composite
def lookalike_cases(draw: st.DrawFn, max_jobs: int = 6) -> dict[str, Any]:
    return draw(cases(max_jobs=max_jobs, with_faults=False, lookalikes=True,
                      exceptions=None if draw(st.booleans()) else True,
                      deny=None if draw(st.booleans()) else True))
