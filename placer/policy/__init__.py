"""Policy engine: YAML rules that decide where each job of a pipeline may run.

Load policy files (:func:`load_policies`), evaluate them against a pipeline and its candidate
sites (:func:`evaluate`), and record which policy decided (:func:`policy_hash`). Tags flow along
the DAG (:func:`lineage_tags`); a job depending on data whose location or classification is
unknown is held. The language is described in ``docs/policies.md``.
"""

from placer.policy._evaluate import JobEligibility, RuleHit, evaluate
from placer.policy._lineage import (
    HELD_CODES,
    HELD_MISSING_TAG,
    HELD_UNKNOWN_LOCATION,
    held_code,
    lineage_tags,
)
from placer.policy._loader import (
    canonical_form,
    load_policies,
    merge,
    policy_from_data,
    policy_hash,
    yaml_files,
)
from placer.policy._model import (
    EFFECTS,
    PATTERN_PREFIXES,
    LocationSet,
    Match,
    PolicyFile,
    PolicySet,
    Rule,
    check_pattern,
    pattern_matches,
)
from placer.policy._references import check_references

__all__ = [
    "EFFECTS",
    "HELD_CODES",
    "HELD_MISSING_TAG",
    "HELD_UNKNOWN_LOCATION",
    "PATTERN_PREFIXES",
    "JobEligibility",
    "LocationSet",
    "Match",
    "PolicyFile",
    "PolicySet",
    "Rule",
    "RuleHit",
    "canonical_form",
    "check_pattern",
    "check_references",
    "evaluate",
    "held_code",
    "lineage_tags",
    "load_policies",
    "merge",
    "pattern_matches",
    "policy_from_data",
    "policy_hash",
    "yaml_files",
]
