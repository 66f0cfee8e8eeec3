"""Policy engine: YAML rules that decide where each job of a pipeline may run.

Load policy files (:func:`load_policies`), evaluate them against a pipeline and its candidate
sites (:func:`evaluate`), and record which policy decided (:func:`policy_hash`). Tags flow along
the DAG (:func:`lineage_tags`); a job depending on data whose location or classification is
unknown is held. Inline tests in policy files run with :func:`run_policy_tests` (``placer
policy test``), and :func:`lint_policies` finds rules that cannot do what they say (``placer
policy lint``). The language is described in ``docs/policies.md`` and, feature by feature, in
``docs/policy-reference.md``.
"""

from placer.policy._evaluate import JobEligibility, RuleHit, evaluate
from placer.policy._lineage import (
    HELD_CODES,
    HELD_MISSING_TAG,
    HELD_UNKNOWN_LOCATION,
    held_code,
    lineage_tags,
)
from placer.policy._lint import Finding, data_classes, lint_policies
from placer.policy._loader import (
    canonical_form,
    load_policies,
    merge,
    policy_file_from_data,
    policy_from_data,
    policy_hash,
    yaml_files,
)
from placer.policy._model import (
    CLASS_LABEL,
    EFFECTS,
    PATTERN_PREFIXES,
    LocationSet,
    Match,
    PolicyFile,
    PolicySet,
    PolicyTest,
    Rule,
    SourcedTest,
    check_pattern,
    pattern_matches,
    site_classes,
)
from placer.policy._references import check_references
from placer.policy._testing import (
    DECISIONS,
    Difference,
    PolicyTestReport,
    PolicyTestResult,
    Unexercised,
    decision_of,
    format_report,
    junit_xml,
    run_policy_tests,
    run_test,
)

__all__ = [
    "CLASS_LABEL",
    "DECISIONS",
    "EFFECTS",
    "HELD_CODES",
    "HELD_MISSING_TAG",
    "HELD_UNKNOWN_LOCATION",
    "PATTERN_PREFIXES",
    "Difference",
    "Finding",
    "JobEligibility",
    "LocationSet",
    "Match",
    "PolicyFile",
    "PolicySet",
    "PolicyTest",
    "PolicyTestReport",
    "PolicyTestResult",
    "Rule",
    "RuleHit",
    "SourcedTest",
    "Unexercised",
    "canonical_form",
    "check_pattern",
    "check_references",
    "data_classes",
    "decision_of",
    "evaluate",
    "format_report",
    "held_code",
    "junit_xml",
    "lineage_tags",
    "lint_policies",
    "load_policies",
    "merge",
    "pattern_matches",
    "policy_file_from_data",
    "policy_from_data",
    "policy_hash",
    "run_policy_tests",
    "run_test",
    "site_classes",
    "yaml_files",
]
