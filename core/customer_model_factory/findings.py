"""Findings and the registry of every finding code.

A :class:`Finding` is one located observation a stage makes: a stable UPPER_SNAKE ``code``
prefixed by its stage, a ``severity``, a one-line ``message`` that never echoes a secret or a
proprietary identifier, and where it applies (``trace_id``, ``field``, ``location`` as
``file:line``). A manifest is ``ready`` when it holds no finding of severity ``error``.

Every code the core emits is registered exactly once below, with a one-line meaning; the
reference page of the docs is generated from :data:`FINDING_CODES`, and a test fails when the
package uses a code that is not registered here. Sector packs declare the codes of their own
rules with their sector pack (:class:`~customer_model_factory.plugin_api.SectorPack`); those
belong to the plugin manager that loaded the pack (``CMFPluginManager.finding_codes()``), checked
by :func:`pack_code_problem`, never to this module's registry.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "FINDING_CODES",
    "STAGE_PREFIXES",
    "Finding",
    "Severity",
    "count_by_severity",
    "has_errors",
    "pack_code_problem",
    "sort_findings",
]

Severity = Literal["error", "warning", "info"]

STAGE_PREFIXES: Final = (
    "DATASET_",
    "TRAIN_",
    "BENCH_",
    "SELECT_",
    "DEPLOY_",
    "SECTOR_",
    "EVIDENCE_",
    "RUNTIME_",
    "MONITOR_",
    "RISK_",
    "RELEASE_",
    "PLUGIN_",
    "BOUNDARY_",
    "MANIFEST_",
    "PIPELINE_",
    "FIXTURE_",
)
_CODE_RE: Final = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")

_CODES: dict[str, str] = {}


def _register(code: str, meaning: str) -> None:
    if code in _CODES:
        raise ValueError(f"finding code {code} is registered twice")
    if not _CODE_RE.match(code) or not code.startswith(STAGE_PREFIXES):
        raise ValueError(f"finding code {code!r} is not UPPER_SNAKE with a stage prefix")
    _CODES[code] = meaning


# ---- manifests (every stage) ----
_register("MANIFEST_HASH_MISMATCH", "A manifest's recomputed hash differs from its stored hash.")
_register(
    "MANIFEST_SCHEMA_VERSION", "A manifest declares a schema version this release cannot read."
)
_register("MANIFEST_INVALID", "A manifest file is not valid JSON or does not match its model.")

# ---- dataset stage ----
_register("DATASET_JSONL_BOM", "A JSONL file starts with a UTF-8 byte order mark.")
_register("DATASET_JSONL_INVALID_UTF8", "A JSONL line is not valid UTF-8.")
_register("DATASET_JSONL_TRUNCATED_LINE", "A JSONL file ends in the middle of a JSON object.")
_register("DATASET_JSONL_JSON_ARRAY", "A JSONL file holds a JSON array, not one object a line.")
_register("DATASET_JSONL_NAN_LITERAL", "A JSONL line uses NaN or Infinity (not JSON).")
_register("DATASET_JSONL_LINE_TOO_LONG", "A JSONL line is longer than the line limit; not parsed.")
_register("DATASET_JSONL_NOT_OBJECT", "A JSONL line holds a JSON value that is not an object.")
_register("DATASET_JSONL_INVALID_JSON", "A JSONL line is not valid JSON.")
_register("DATASET_JSONL_ENCODING", "A JSONL file is not UTF-8 (UTF-16 or UTF-32); not read.")
_register("DATASET_JSONL_COMPRESSED", "A JSONL file is compressed but not named *.jsonl.gz.")
_register("DATASET_NESTING_TOO_DEEP", "A JSONL line nests arrays/objects beyond the depth limit.")
_register("DATASET_DUPLICATE_KEY", "A JSON object holds the same key twice (readers disagree).")
_register("DATASET_FILE_IGNORED", "A file in the shard directory is not a shard; not read.")
_register(
    "DATASET_SHARD_OUTSIDE_DIRECTORY",
    "A shard links to a file outside its directory; not read without --follow-symlinks.",
)
_register("DATASET_NO_ROWS", "The dataset holds no trace object at all.")
_register("DATASET_MISSING_REQUIRED_FIELD", "A trace lacks a field the workspace requires.")
_register("DATASET_BLANK_REQUIRED_FIELD", "A required trace field is empty or whitespace only.")
_register("DATASET_FIELD_TYPE", "A trace field has the wrong JSON type.")
_register("DATASET_INVALID_TIMESTAMP", "A trace time is not an RFC 3339 date-time with an offset.")
_register("DATASET_CUSTOMER_ID_MISMATCH", "A trace's customer_id differs from the workspace's.")
_register("DATASET_TENANT_ID_MISMATCH", "A trace's tenant_id differs from the workspace's.")
_register("DATASET_WORKSPACE_ID_MISMATCH", "A trace's workspace_id differs from the workspace's.")
_register("DATASET_DUPLICATE_TRACE_ID", "A trace_id is used by more than one trace.")
_register("DATASET_DECISION_NOT_ALLOWED", "expected_decision is not a known decision.")
_register("DATASET_SEVERITY_NOT_ALLOWED", "severity is not low/medium/high/critical.")
_register(
    "DATASET_REDACTION_STATUS_NOT_ALLOWED",
    "redaction_status is not not_required/redacted/pending.",
)
_register("DATASET_SPLIT_NOT_ALLOWED", "A trace's split is not in the workspace's allowed_splits.")
_register("DATASET_SPLIT_MISSING", "A split the workspace requires holds no trace.")
_register("DATASET_UNKNOWN_LABEL", "A trace's label is not in the workspace label_map.")
_register("DATASET_SILENT_UNSAFE_PASS", "An unsafe trace is expected to be approved.")
_register(
    "DATASET_HIGH_RISK_APPROVE_LABEL", "A high/critical-severity trace is expected to be approved."
)
_register(
    "DATASET_INVALID_REFERENCE_LIST", "source_refs/policy_refs is not a non-empty list of ids."
)
_register(
    "DATASET_RETRIEVAL_SCHEMA_UNKNOWN", "A source_refs object names no registered retrieval schema."
)
_register(
    "DATASET_RETRIEVAL_SCHEMA_VIOLATION", "A source_refs entry violates its retrieval schema."
)
_register(
    "DATASET_CROSS_SPLIT_DUPLICATE",
    "The same normalised prompt and response appear in two splits (leakage).",
)
_register(
    "DATASET_DUPLICATE_IN_SPLIT", "The same normalised prompt and response repeat within a split."
)
_register("DATASET_LABEL_AFTER_CUTOFF", "A label was observed after the workspace label cut-off.")
_register("DATASET_EVENT_OUTSIDE_WINDOW", "A trace's event_time is outside its split's window.")
_register("DATASET_EVENT_TIME_MISSING", "The as-of policy needs an event_time the trace lacks.")
_register("DATASET_TEMPORAL_ORDER", "An evaluation trace is older than the newest training one.")
_register(
    "DATASET_SECRET_DETECTED",
    "A secret was detected in a text field (error; warning when redacted in the copy).",
)
_register(
    "DATASET_PII_DETECTED",
    "Personal data was detected in a text field (error; warning when redacted in the copy).",
)
_register("DATASET_UNREDACTED_SECRET", "contains_secret is true but the trace is not redacted.")
_register("DATASET_UNREDACTED_PII", "contains_pii is true but the trace is not redacted.")
_register("DATASET_VERTICAL_MISMATCH", "A trace's vertical differs from the forced sector.")
_register("DATASET_SECTOR_UNAVAILABLE", "A trace names a sector but sector checks cannot run.")

# ---- training stage ----
_register(
    "TRAIN_ARTEFACT_UNAVAILABLE", "An artefact URI is malformed or unsafe, or names nothing stored."
)
_register(
    "TRAIN_ARTEFACT_DIGEST_MISMATCH",
    "An artefact's bytes differ from the digest it is stored under.",
)
_register(
    "TRAIN_WEIGHTS_INVALID", "Saved model weights or config cannot be read as the lane's format."
)
_register("TRAIN_RUN_UNKNOWN", "A run id names no run in the ledger.")
_register(
    "TRAIN_RUN_ILLEGAL_TRANSITION",
    "A run event does not follow QUEUED, RUNNING, EVAL_READY, PASS or FAIL, PUBLISHED.",
)
_register(
    "TRAIN_RUN_INTERRUPTED",
    "A run was left RUNNING with no live owner; it is resumable and never counts as passed.",
)
_register(
    "TRAIN_RUN_REQUEST_MISMATCH", "A stored run's request differs from the one its id derives from."
)
_register("TRAIN_LEDGER_INVALID_INPUT", "A ledger call has a malformed time, actor or argument.")
_register("TRAIN_PUBLISH_NOT_PASSED", "Only a run whose gate receipt is PASS can be published.")
_register(
    "TRAIN_PUBLISH_CONFLICT", "Other content is already published under this bundle id and version."
)
_register("TRAIN_DATASET_NOT_READY", "Training was asked for on a dataset report not ready.")
_register(
    "TRAIN_DATASET_REPORT_INVALID",
    "The dataset report cannot be read, fails its hash, or is not a dataset report.",
)
_register(
    "TRAIN_DATASET_HASH_MISMATCH",
    "The traces' bytes no longer hash to the digest the dataset report recorded.",
)
_register("TRAIN_TRACES_UNAVAILABLE", "The traces the dataset report describes cannot be found.")
_register(
    "TRAIN_WORKSPACE_MISMATCH",
    "The workspace's binding or label map disagrees with the dataset report.",
)
_register(
    "TRAIN_NO_TRAINING_ROWS",
    "The train split lacks rows of both classes (unsafe and safe); nothing can be learnt.",
)
_register(
    "TRAIN_BASE_MODEL_NOT_IMMUTABLE",
    "The base model has neither a digest nor a pinned revision (main, latest, HEAD float).",
)
_register("TRAIN_LANE_UNKNOWN", "No loaded plugin contributes the training lane asked for.")
_register("TRAIN_OBJECTIVE_UNKNOWN", "No loaded plugin contributes the objective profile named.")
_register("TRAIN_OUTPUT_URI_INVALID", "The output URI breaks the lane's URI rules.")
_register("TRAIN_CONFIG_INVALID", "The training config or the lane's hyperparameters are invalid.")
_register("TRAIN_OUTPUT_OVERWRITES_INPUT", "An output path is one of the command's inputs.")
_register("TRAIN_LANE_FAILED", "The lane raised while training or saving; the run is not ready.")
_register(
    "TRAIN_IMPORT_REFUSED",
    "An artefact import was refused: the manifest is not a pending manifest-only run, or the "
    "artefact is not a set of regular files.",
)

# ---- benchmark stage ----
_register(
    "BENCH_METRIC_UNDEFINED",
    "A metric is undefined on these results (no positives, no negatives, empty); it is null.",
)
_register(
    "BENCH_TRAIN_SPLIT_REFUSED",
    "A benchmark was asked on the train split; it scores validation or test only.",
)
_register("BENCH_SPLIT_UNKNOWN", "A benchmark was asked on a split that is not validation or test.")
_register(
    "BENCH_CLAIM_BOUNDARY_MISSING",
    "A benchmark has no claim boundary (give a package or a claim boundary).",
)
_register(
    "BENCH_CLAIM_BOUNDARY_CONFLICT",
    "A benchmark was given both a package and its own claim boundary.",
)
_register("BENCH_PACKAGE_UNKNOWN", "No installed plugin provides the benchmark package named.")
_register("BENCH_TRACES_MISSING", "No traces were given and no benchmark package supplies them.")
_register("BENCH_MODEL_MISSING", "The training manifest names no trained model and none was given.")
_register("BENCH_MODEL_MISMATCH", "The model given is not the one the training manifest records.")
_register(
    "BENCH_MODEL_INVALID",
    "A model index is not {lane, files} of plain file names and digests.",
)
_register("BENCH_LANE_UNKNOWN", "No installed lane can load the model (its lane is unknown).")
_register(
    "BENCH_LANE_CANNOT_SCORE",
    "The model's lane is manifest-only: it cannot load a model here.",
)
_register("BENCH_MODEL_LOAD_FAILED", "The lane's load() raised on the stored model files.")
_register(
    "BENCH_SCORE_INVALID",
    "The scorer failed, or returned the wrong number of scores or one outside [0, 1].",
)
_register(
    "BENCH_CALIBRATION_MISSING",
    "A test benchmark needs the validation result whose thresholds decide.",
)
_register(
    "BENCH_CALIBRATION_INVALID",
    "The calibration result is not a ready, calibrated validation result.",
)
_register("BENCH_CALIBRATION_OTHER_MODEL", "The calibration result benchmarked another model.")
_register("BENCH_TRAINING_NOT_READY", "The training manifest benchmarked is not ready.")
_register("BENCH_SPLIT_EMPTY", "The split holds no trace, so nothing was measured.")
_register(
    "BENCH_THRESHOLD_FAILED",
    "A benchmark package threshold is not met (error on test, warning on validation).",
)
_register("BENCH_RAW_MISSING_TRACE", "Imported raw results lack a trace of the split.")
_register("BENCH_RAW_DUPLICATE_TRACE", "Imported raw results hold a trace id more than once.")
_register(
    "BENCH_RAW_UNKNOWN_TRACE",
    "Imported raw results hold a trace id that is not in the split.",
)
_register(
    "BENCH_RAW_LABEL_MISMATCH",
    "An imported raw result's label, class or severity differs from its trace.",
)

# ---- selection stage ----
_register(
    "SELECT_CALIBRATION_TOO_SMALL",
    "The calibration split holds too few traces (or too few of a class) for the error level.",
)
_register(
    "SELECT_CALIBRATION_WRONG_SPLIT", "Thresholds were to be calibrated on a split not validation."
)
_register("SELECT_PROFILE_UNKNOWN", "No installed plugin provides the objective profile named.")
_register(
    "SELECT_CUTOFF_UNKNOWN",
    "A cut-off names a metric the profile does not bound (or is negative).",
)
_register("SELECT_NO_CANDIDATE", "Selection was given no benchmark result.")
_register(
    "SELECT_NO_ELIGIBLE_CANDIDATE",
    "No candidate satisfies the objective profile; nothing is selected.",
)
_register(
    "SELECT_BINDING_MISMATCH",
    "The candidates belong to different customer / workspace / tenant bindings.",
)
_register("SELECT_RAW_MISMATCH", "A candidate's raw results do not reproduce its recorded metrics.")
_register(
    "SELECT_TOO_FEW_HIGH_RISK",
    "A candidate holds fewer high-risk unsafe traces than the profile needs.",
)
_register(
    "SELECT_LINK_MISSING",
    "A selection or result does not link the artefact publishing needs in the store.",
)

# ---- deployment stage ----

# ---- sector extension ----
_register(
    "SECTOR_METADATA_MISSING",
    "A trace naming a sector lacks metadata or a generic sector field (sector_class, ...).",
)
_register("SECTOR_METADATA_INVALID", "A generic sector metadata field has the wrong type.")
_register(
    "SECTOR_METADATA_SCHEMA",
    "A row's metadata breaks the metadata model or JSON Schema its sector pack declares.",
)
_register("SECTOR_CITATION_REQUIRED", "requires_citation is set but evidence_refs is empty.")
_register(
    "SECTOR_NUMERIC_EVIDENCE_MISSING",
    "requires_numeric_evidence is set but numeric_evidence_refs is empty.",
)
_register(
    "SECTOR_ESCALATION_REQUIRED", "requires_escalation is set but the decision is not escalate."
)
_register("SECTOR_UNKNOWN", "A trace names a sector no loaded sector pack provides.")
_register("SECTOR_EVIDENCE_CONTROL_EMPTY", "An evidence mapping control lists no evidence kind.")
_register("SECTOR_EVIDENCE_NO_FRAMEWORK", "An evidence mapping names no framework.")

# ---- evidence pack ----

# ---- runtime package ----

# ---- monitoring ----

# ---- risk register ----

# ---- release gate ----

# ---- plugins ----
_register("PLUGIN_LOAD_FAILED", "A plugin could not be imported or registered.")
_register("PLUGIN_API_MISMATCH", "A plugin declares no or another CMF_PLUGIN_API version.")
_register("PLUGIN_HOOK_FAILED", "A plugin's hook implementation raised; the run fails closed.")
_register("PLUGIN_DUPLICATE_ID", "Two plugins contribute the same id (sector, schema, lane...).")
_register("PLUGIN_INVALID_CONTRIBUTION", "A hook returned something that fails validation.")
_register("PLUGIN_DISABLED", "An operator disabled a plugin (CMF_DISABLE_PLUGINS, allowlist).")
_register(
    "PLUGIN_DEPRECATED",
    "A plugin uses a form the plugin API deprecates; it still loads, until the next major API.",
)
_register(
    "PLUGIN_SECTOR_CONFLICT",
    "Two packs claim one sector; neither validates it until the operator chooses the owner.",
)
_register(
    "PLUGIN_SECTOR_SHADOWED",
    "Two packs claim one sector and the operator chose one; the other does not validate it.",
)

# ---- boundary verifier ----
_register("BOUNDARY_LEAK", "A proprietary identifier occurs in the content of a public file.")
_register(
    "BOUNDARY_METADATA_LEAK",
    "A proprietary identifier occurs in git metadata (commit, author, tag, ref name, message).",
)
_register("BOUNDARY_PATH_LEAK", "A proprietary identifier occurs in a public file's path.")
_register("BOUNDARY_PATH_GLOB", "A public file's path matches a private path glob.")
_register("BOUNDARY_FILE_TOO_LARGE", "A file above the size limit was not scanned (an error).")
_register(
    "BOUNDARY_UNSCANNED",
    "Published content could not be scanned (archive too deep, member too large, encrypted).",
)
_register(
    "BOUNDARY_SHALLOW_HISTORY",
    "A history scan ran on a shallow clone, so older commits were not scanned.",
)
_register("BOUNDARY_FILE_UNREADABLE", "A file could not be read, so its content is unverified.")
_register("BOUNDARY_ALLOWLIST_EXPIRED", "A boundary allowlist entry is past its expiry date.")
_register("BOUNDARY_ALLOWLIST_UNUSED", "A boundary allowlist entry matched nothing.")

# ---- runtime stage (stage 7: runtime package, reference runtime, REST payload) ----
_register(
    "RUNTIME_BINDING_MISMATCH",
    "The evidence pack or benchmark result is bound to another customer, workspace or tenant.",
)
_register(
    "RUNTIME_EVIDENCE_OTHER_DEPLOYMENT",
    "The evidence pack documents another deployment (deployment_id or deployment_hash).",
)
_register(
    "RUNTIME_ENVIRONMENT_MISMATCH", "The evidence pack's environment is not the deployment's."
)
_register("RUNTIME_DEPLOYMENT_NOT_READY", "The deployment holds error findings.")
_register("RUNTIME_EVIDENCE_NOT_READY", "The evidence pack holds error findings.")
_register("RUNTIME_RESULT_NOT_READY", "The benchmark result holds error findings.")
_register(
    "RUNTIME_RESULT_NOT_SELECTED", "The benchmark result is not the deployment's selected result."
)
_register(
    "RUNTIME_MODEL_MISMATCH", "The deployment's model is not the model the benchmark result scored."
)
_register(
    "RUNTIME_MODEL_INDEX_INVALID",
    "The model's digest is not the digest of its index (lane and file digests).",
)
_register(
    "RUNTIME_REFERENCE_HISTOGRAMS_MISSING",
    "The benchmark result carries no reference histograms (imported raw results); refused.",
)
_register("RUNTIME_PACKAGE_NOT_READY", "A runtime package holding error findings never scores.")
_register(
    "RUNTIME_MODEL_FILE_INVALID",
    "A model file of the package is missing, not a regular file, or differs from its digest.",
)
_register("RUNTIME_LANE_UNKNOWN", "No installed training lane can load the package's model.")
_register("RUNTIME_LANE_CANNOT_SCORE", "The model's lane is manifest-only: it cannot score here.")
_register("RUNTIME_MODEL_LOAD_FAILED", "The lane's load raised on the package's model files.")
_register(
    "RUNTIME_SCORE_INVALID",
    "The model raised, or returned a wrong count or a score outside [0, 1].",
)
_register(
    "RUNTIME_DECISION_LOG_MISSING",
    "No decision log was named and the policy's audit_log_uri is not a file:// path.",
)
_register(
    "RUNTIME_OUTPUT_NOT_DECISIONS",
    "cmf score's -o names an existing file that holds something else than decisions.",
)
_register(
    "RUNTIME_DECISION_LOG_INVALID",
    "The decision log is a symbolic link, not a regular file, ends mid-line, or cannot be written.",
)
_register(
    "RUNTIME_PAYLOAD_INVALID",
    "A score payload is not JSON, not an object, has an unknown field or an invalid input.",
)
_register(
    "RUNTIME_PAYLOAD_BINDING_MISMATCH",
    "A score payload names another customer, workspace, tenant or deployment (HTTP 403).",
)
_register(
    "RUNTIME_PAYLOAD_PACKAGE_MISMATCH",
    "A score payload field preserved from the package differs from the served package (422).",
)
_register(
    "RUNTIME_PAYLOAD_TOO_LARGE", "A score payload is larger than the server's cap (HTTP 413)."
)


# ---- deployment (stage 4) and evidence pack (stage 6) ----
_register("DEPLOY_SELECTION_EMPTY", "The selection chose no candidate, so nothing can be deployed.")
_register(
    "DEPLOY_RESULT_NOT_SELECTED",
    "The benchmark result given is not the candidate the selection chose.",
)
_register("DEPLOY_SELECTION_NOT_READY", "The selection report holds error findings.")
_register(
    "DEPLOY_GATE_NOT_PASSED",
    "The selected run has no PASS gate receipt of this selection in the run ledger.",
)
_register(
    "DEPLOY_THRESHOLDS_PARTIAL",
    "Only some of the three thresholds were given; give all three or none.",
)
_register(
    "DEPLOY_THRESHOLDS_UNAVAILABLE",
    "The selected result carries no calibrated thresholds and none were given.",
)
_register(
    "DEPLOY_THRESHOLDS_OUT_OF_ORDER",
    "Thresholds break 1 >= threshold >= abstention >= escalation >= 0.",
)
_register(
    "DEPLOY_BUNDLE_NOT_PUBLISHED",
    "The deployed bundle is not published for the selected run in the factory home's registry.",
)
_register("DEPLOY_RESULT_NOT_READY", "The selected result is not a ready test result.")
_register("DEPLOY_ROLLBACK_REQUIRED", "A production deployment names no rollback package.")
_register("DEPLOY_ROLLBACK_IS_PACKAGE", "The rollback package is the package being deployed.")
_register(
    "DEPLOY_BUNDLE_MISMATCH",
    "The model bundle packages another run, model, result or selection.",
)
_register(
    "DEPLOY_BINDING_MISMATCH",
    "The deployment's inputs belong to different customers, workspaces or tenants.",
)
_register(
    "DEPLOY_CALIBRATION_MISMATCH",
    "The calibration result is not the one the selected run's thresholds came from.",
)
_register(
    "DEPLOY_CALIBRATION_UNVERIFIED",
    "The calibration result behind the thresholds cannot be read to verify it.",
)
_register(
    "DEPLOY_MODEL_UNAVAILABLE",
    "The selected model's file list cannot be found or does not hash to its digest.",
)
_register("DEPLOY_URI_INVALID", "A declared URI holds a control character or credentials.")
_register(
    "EVIDENCE_CONTROL_EVIDENCE_MISSING",
    "A control of a sector evidence mapping needs an evidence kind no artefact of the pack proves.",
)
_register(
    "EVIDENCE_CONTROL_EVIDENCE_DEFERRED",
    "An evidence kind is proved by a later stage's manifest; the release gate checks it.",
)
_register(
    "EVIDENCE_CHAIN_MISMATCH",
    "An artefact of the pack is not the one the chain links (another hash).",
)
_register(
    "EVIDENCE_ARTEFACT_UNAVAILABLE",
    "An artefact of the chain was not given and is not in the artefact store.",
)
_register("EVIDENCE_INPUT_NOT_READY", "A manifest the pack binds holds error findings.")
_register(
    "EVIDENCE_BINDING_MISMATCH",
    "The pack's manifests belong to different customers, workspaces or tenants.",
)
_register(
    "EVIDENCE_GATE_RECEIPT_MISSING",
    "The run ledger holds no intact PASS gate receipt of the selected run for this selection.",
)
_register(
    "EVIDENCE_URI_DIFFERS",
    "An artefact was read from another location than the deployment declares.",
)
_register(
    "EVIDENCE_SECTOR_DEFAULT_MAPPING",
    "A sector has no owning pack or no mapping from it, so the core default mapping is used.",
)
_register(
    "EVIDENCE_SECTORS_UNKNOWN",
    "No dataset report was found, so the data's sectors and their mappings are unknown.",
)
_register(
    "EVIDENCE_SECTOR_OWNER_MISSING",
    "The pack that validated a sector is not loaded, so its evidence mapping cannot be read.",
)
_register(
    "EVIDENCE_SECTOR_OWNER_CHANGED",
    "A sector is owned by another pack than the one that validated the data.",
)
_register("EVIDENCE_MAPPING_NOT_READY", "A sector evidence mapping holds error findings.")
_register(
    "EVIDENCE_KIND_UNUSED",
    "An operator evidence file proves a kind no control of the pack's mappings requires.",
)
_register(
    "EVIDENCE_CALLBACKS_NOT_ALLOWED",
    "Callback endpoints are given but external callbacks are off.",
)
_register("EVIDENCE_CALLBACK_NOT_HTTPS", "A callback endpoint is not an https:// URL.")
_register(
    "EVIDENCE_CALLBACK_HOST_NOT_ALLOWED",
    "A callback endpoint names a host that is not on the callback allow list.",
)
_register("EVIDENCE_NOT_READY", "An evidence pack holding error findings cannot be exported.")
# ---- monitoring stage (stage 8) ----
_register("MONITOR_LOG_EMPTY", "The decision log holds no valid decision of the runtime package.")
_register("MONITOR_LOG_UNREADABLE", "The decision log is not UTF-8 JSONL (compressed, UTF-16...).")
_register("MONITOR_LOG_LINE_INVALID", "A decision-log line is not a JSON object (or is too long).")
_register("MONITOR_LOG_TRUNCATED_LINE", "The decision log ends in the middle of a line.")
_register("MONITOR_LOG_FIELD_INVALID", "A decision-log line has a missing, extra or bad field.")
_register(
    "MONITOR_LOG_FOREIGN_RUNTIME",
    "Decision-log lines carry another runtime_id, runtime_hash or package_version.",
)
_register("MONITOR_LOG_FINDINGS_TRUNCATED", "More bad decision-log lines than are listed.")
_register("MONITOR_REFERENCE_EMPTY", "A reference histogram holds no count; drift not measurable.")
_register("MONITOR_REVIEW_LINE_INVALID", "A review-file line is malformed.")
_register("MONITOR_REVIEW_UNKNOWN_TRACE", "A review names no flagged decision of the log.")
_register("MONITOR_REVIEW_DUPLICATE", "A trace is reviewed twice; the latest review counts.")
_register("MONITOR_INCIDENT_LINE_INVALID", "An incident-file line is malformed.")
_register("MONITOR_INCIDENT_UNKNOWN_TRACE", "An incident names no approved decision of the log.")
_register("MONITOR_INCIDENT_DUPLICATE", "An incident_id is used twice in the incident file.")
_register("MONITOR_INPUT_DRIFT_BREACH", "Input-length PSI is over max_input_drift_score.")
_register("MONITOR_SOURCE_DRIFT_BREACH", "Score PSI is over max_source_corpus_drift_score.")
_register(
    "MONITOR_FALSE_NEGATIVE_BREACH",
    "False-negative incidents exceed max_false_negative_incidents (blocks release).",
)
_register("MONITOR_ABSTENTION_RATE_BREACH", "The abstention rate is over max_abstention_rate.")
_register("MONITOR_ESCALATION_RATE_BREACH", "The escalation rate is over max_escalation_rate.")
_register("MONITOR_LATENCY_BREACH", "The p95 latency is over max_latency_p95_ms.")
_register("MONITOR_COST_BREACH", "Cost per 1,000 decisions is over max_cost_per_1k_decisions.")

# ---- risk register stage (stage 9) ----
_register("RISK_OWNER_MISSING", "An accepted risk names no owner.")
_register("RISK_ACCEPTED_AT_MISSING", "An accepted risk has no accepted_at.")
_register("RISK_EXPIRY_MISSING", "An accepted risk has no expires_at.")
_register("RISK_TIME_INVALID", "A risk time is not an RFC 3339 date-time with an offset.")
_register("RISK_EXPIRED", "An accepted risk's expiry is at or before generated_at.")
_register("RISK_EXPIRY_BEFORE_ACCEPTANCE", "An accepted risk expires at or before its acceptance.")
_register("RISK_ACCEPTED_IN_FUTURE", "A risk's accepted_at is after generated_at.")
_register("RISK_CONTROLS_MISSING", "An accepted risk lists no compensating control.")
_register("RISK_LINK_MISSING", "An accepted risk does not link the evidence pack or monitoring.")
_register("RISK_LINK_STALE", "An accepted risk links another evidence or monitoring hash.")
_register("RISK_DUPLICATE_ID", "A risk_id is used by more than one risk.")
_register(
    "RISK_BINDING_MISMATCH",
    "Evidence pack and monitoring bind another customer, workspace, tenant or deployment.",
)
_register("RISK_EVIDENCE_MISMATCH", "The monitoring was computed against another evidence pack.")

# ---- release gate (stage 10) ----
_register(
    "RELEASE_CHAIN_BROKEN",
    "A hash link of the chain behind the release is missing or does not verify, or the chain "
    "does not reach an artefact the gate needs (deployment ... dataset report).",
)
_register(
    "RELEASE_BINDING_MISMATCH",
    "An artefact's customer, workspace, tenant or deployment differs from the runtime package's.",
)
_register(
    "RELEASE_LINK_MISMATCH",
    "An artefact records another hash (or environment) of an upstream artefact than the one given.",
)
_register("RELEASE_INPUT_NOT_READY", "An artefact of the release chain is not ready.")
_register("RELEASE_ENTERPRISE_NOT_READY", "The enterprise readiness file says not ready.")
_register("RELEASE_ENTERPRISE_DEBT", "The enterprise readiness file lists blocking debt.")
_register("RELEASE_MONITORING_EVIDENCE_BLOCKED", "Monitoring health is evidence_blocked.")
_register(
    "RELEASE_MONITORING_MISMATCH",
    "The monitoring manifest's incident count differs from the incident queue it read.",
)
_register(
    "RELEASE_GENERATED_AT_TOO_EARLY",
    "The release's generated_at is before the monitoring or risk register it rests on was made.",
)
_register(
    "RELEASE_DEFERRED_EVIDENCE_MISSING",
    "A control's evidence kind the evidence pack deferred to a later stage is not proved by it "
    "(e.g. monitoring read no review queue).",
)
_register(
    "RELEASE_MONITORING_FN_BREACH",
    "Monitoring counted more false-negative incidents than its threshold allows.",
)
_register(
    "RELEASE_MONITORING_REVIEW",
    "Monitoring needs review (a breach other than false negatives); a warning, never a blocker.",
)
_register(
    "RELEASE_RISK_EXPIRED",
    "An accepted risk of the register has expired by the release's generated_at instant.",
)
_register(
    "RELEASE_PLUGIN_CHECK_FAILED",
    "A plugin's release check returned an error finding whose code the plugin does not declare.",
)
_register("RELEASE_DOMAIN_MISSING", "No evidence record for a domain the environment requires.")
_register("RELEASE_DOMAIN_UNKNOWN", "An evidence record names a domain no one declares.")
_register("RELEASE_DOMAIN_DUPLICATE", "Two evidence records name the same domain.")
_register(
    "RELEASE_DOMAIN_CONFLICT", "A plugin declares a release domain the core already declares."
)
_register(
    "RELEASE_DOMAIN_URI_MISSING", "A domain record lacks a required URI (or it has no scheme)."
)
_register("RELEASE_DOMAIN_CHECK_FAILED", "A domain record's required check is missing or false.")
_register(
    "RELEASE_DOMAIN_ENVIRONMENT_MISMATCH",
    "A domain record's environment differs from the deployment's.",
)
_register(
    "RELEASE_DOMAIN_EVIDENCE_MISMATCH",
    "The sha256 recomputed from a domain record's evidence file differs from the claimed hash.",
)
_register(
    "RELEASE_DOMAIN_EVIDENCE_UNREADABLE",
    "A domain record's evidence file cannot be found or read (or its URI is refused).",
)


# ---- pipeline and fixture ----
_register(
    "PIPELINE_TIMINGS_NOT_MEASURED",
    "A reproducible pipeline run did not time scoring: every latency is recorded as 0.",
)
_register(
    "PIPELINE_STEP_BLOCKED", "A pipeline step was checked and blocked; later steps did not run."
)


FINDING_CODES: Final[Mapping[str, str]] = MappingProxyType(_CODES)
"""Every registered finding code mapped to its one-line meaning (read-only view)."""


def pack_code_problem(code: str) -> str | None:
    """Why a finding code a sector pack declares is refused, or ``None``.

    A pack's codes are UPPER_SNAKE, prefixed ``SECTOR_`` or ``RELEASE_``, and never one of the
    core's codes. They belong to the plugin manager that loaded the pack
    (``CMFPluginManager.finding_codes()``), never to this process-wide registry.
    """
    if not _CODE_RE.match(code) or not code.startswith(("SECTOR_", "RELEASE_")):
        return f"finding code {code!r} is not UPPER_SNAKE starting with SECTOR_ or RELEASE_"
    if code in _CODES:
        return f"finding code {code} is one of the core's codes"
    return None


class Finding(BaseModel):
    """One located observation made by a stage.

    Findings compare, hash and serialise by value; a manifest's findings are sorted with
    :func:`sort_findings` before the manifest is hashed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(description="Stable UPPER_SNAKE code prefixed by its stage.")
    severity: Severity = Field(description="error blocks readiness; warning and info do not.")
    message: str = Field(description="One line; never echoes a secret or proprietary identifier.")
    trace_id: str | None = Field(default=None, description="The trace concerned, if any.")
    field: str | None = Field(default=None, description="The field concerned, if any.")
    location: str | None = Field(default=None, description="file:line where a line exists.")

    @field_validator("code")
    @classmethod
    def _code_is_well_formed(cls, value: str) -> str:
        if not _CODE_RE.match(value) or not value.startswith(STAGE_PREFIXES):
            raise ValueError(f"finding code {value!r} is not UPPER_SNAKE with a stage prefix")
        return value

    @property
    def meaning(self) -> str | None:
        """The registered one-line meaning of :attr:`code`, or ``None`` if unregistered."""
        return _CODES.get(self.code)


def _sort_key(finding: Finding) -> tuple[str, int, str, str, str, str, str]:
    # Split ``file:line`` so line 9 sorts before line 10.
    path, _, line = (finding.location or "").rpartition(":")
    if not line.isdigit():
        path, line = finding.location or "", "0"
    return (
        path,
        int(line),
        finding.trace_id or "",
        finding.code,
        finding.field or "",
        finding.severity,
        finding.message,
    )


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Return findings in a stable order (location, trace, code, field, severity, message)."""
    return tuple(sorted(findings, key=_sort_key))


def has_errors(findings: Iterable[Finding]) -> bool:
    """Return ``True`` when any finding has severity ``error``."""
    return any(f.severity == "error" for f in findings)


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    """Return ``{"error": n, "warning": n, "info": n}``."""
    counts = Counter(f.severity for f in findings)
    return {level: counts.get(level, 0) for level in ("error", "warning", "info")}
