"""The API's OpenAPI 3.1 description: paths written by hand beside the routes, request schemas
generated from the request models, response schemas written from the same constants.

`tests/test_openapi.py` fails when a JSON route is missing here; `tests/test_schemathesis.py` checks
the running API against this document.
"""

from django.conf import settings

from alerts.models import Alert
from alerts.services import ALERT_STATES, LIST_LIMIT
from autopack_site.contract import EmptyBody, openapi_schemas
from autopack_site.limits import BIGINT_MAX, INT_MAX, MAX_USAGE_EVENTS
from notes.requests import HumanNoteIn
from routing.config import COMPLEXITIES
from routing.requests import SCOPES, OverrideReset, OverrideSet
from runs.payloads import (
    AuditorResult,
    BuilderResult,
    IssueSpec,
    PhaseControl,
    PhaseStatusUpdate,
    RunControl,
    RunStatusUpdate,
    StartRun,
)
from runs.states import (
    DIRECTIVES,
    ISSUE_SEVERITIES,
    RUN_ACTIONS,
    RUN_SCOPES,
    SAFETY_PROFILES,
    USAGE_LEVELS,
    PhaseState,
    RunState,
    TierState,
)
from usage.aggregation import PERIODS, parse_period
from usage.requests import UsageBatch, UsageEventIn

ERROR = {"$ref": "#/components/schemas/Error"}
STATES_RUN = list(RunState.values)
STATES_PHASE = list(PhaseState.values)
STATES_TIER = list(TierState.values)
PERIOD_NAMES = list(PERIODS)
DEFAULT_PERIOD = parse_period(None)
COUNT = {"type": "integer", "minimum": 0, "maximum": INT_MAX}
TOKENS = {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX}
TIME = {"type": ["string", "null"], "format": "date-time"}
REQUEST_MODELS = (
    StartRun,
    RunStatusUpdate,
    RunControl,
    PhaseStatusUpdate,
    PhaseControl,
    IssueSpec,
    BuilderResult,
    AuditorResult,
    UsageEventIn,
    UsageBatch,
    OverrideSet,
    OverrideReset,
    HumanNoteIn,
    EmptyBody,
)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: int) -> dict:
    text = {
        400: "Malformed or invalid input",
        401: "Missing or wrong X-API-Key",
        403: "Not a loopback client (no API key set), or a cross-site Origin",
        404: "Unknown run or phase",
        405: "Wrong method",
        409: "The run exists, or the move is illegal",
        413: "Body over the endpoint's limit (1 MiB; 8 MiB for usage)",
        415: "Content-Type is not application/json",
    }
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}} for c in codes}


WRITE_ERRORS = (400, 401, 403, 404, 405, 409, 413, 415)


def _json_body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _ok(schema_ref: str, code: str = "200", description: str = "OK") -> dict:
    return {code: {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}}


RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
PHASE_ID = {"name": "phase_id", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_spec() -> dict:
    security = [{"ApiKey": []}] if settings.AUTOPACK_API_KEY else []
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Autopack Dashboard API",
            "version": "1.0.0",
            "description": (
                "Runs, tiers and phases of Autopack builds, as the Autopack executor reports them. "
                "Write endpoints take `Content-Type: application/json` and need `X-API-Key` when the "
                "server has AUTOPACK_API_KEY set; without it they accept loopback clients only. "
                'Every error is `{"error": message, "details": {field path: message}}`.'
            ),
        },
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {**SCHEMAS, **openapi_schemas(*REQUEST_MODELS)},
        },
        "paths": {
            "/runs/start": {
                "post": {
                    "summary": "Start a run with its tiers and phases",
                    "operationId": "startRun",
                    "security": security,
                    "requestBody": _json_body({"$ref": "#/components/schemas/StartRun"}),
                    "responses": {
                        **_ok("#/components/schemas/Run", "201", "Created"),
                        **_errors(*WRITE_ERRORS),
                    },
                }
            },
            "/runs/": {
                "get": {
                    "summary": "List runs, newest first",
                    "operationId": "listRuns",
                    "parameters": [
                        {"name": "state", "in": "query", "schema": {"enum": STATES_RUN}},
                        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                        {
                            "name": "page_size",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                    ],
                    "responses": {**_ok("#/components/schemas/RunList"), **_errors(400)},
                }
            },
            "/runs/{run_id}": {
                "get": {
                    "summary": "A run with its tiers and phases",
                    "operationId": "getRun",
                    "parameters": [RUN_ID],
                    "responses": {**_ok("#/components/schemas/Run"), **_errors(404)},
                }
            },
            "/runs/{run_id}/update_status": {
                "post": {
                    "summary": "Set a run-level state the executor owns",
                    "description": "GATE, CI_RUNNING, SNAPSHOT_CREATED, PHASE_QUEUEING, PHASE_EXECUTION or "
                    "DONE_FAILED_*. DONE_SUCCESS and the start states are derived from the phases (409).",
                    "operationId": "updateRunStatus",
                    "security": security,
                    "parameters": [RUN_ID],
                    "requestBody": _json_body(_ref("RunStatusUpdate")),
                    "responses": {**_ok("#/components/schemas/RunSummary"), **_errors(*WRITE_ERRORS)},
                }
            },
            "/runs/{run_id}/control": {
                "get": {
                    "summary": "What an executor should do now: continue, pause or stop",
                    "description": "For executors whose LLM calls do not go through LlmService: poll this "
                    "between calls. `pause` while the run is paused, `stop` once it is finished (cancelled, "
                    "out of budget, or done).",
                    "operationId": "getRunControl",
                    "parameters": [RUN_ID],
                    "responses": {**_ok("#/components/schemas/RunControlState"), **_errors(404)},
                },
                "post": {
                    "summary": "Pause, resume or cancel a run, saying why",
                    "description": "Pause is a flag, not a state: LlmService refuses the run's calls until it "
                    "is resumed. Cancel finishes the run as DONE_FAILED_REQUIRES_HUMAN_REVIEW with "
                    "failure_reason `cancelled: <reason>`; every later call and update is refused (409). "
                    "Resuming a run that is not paused, or any action on a finished run, is a 409 saying why. "
                    "Who did it is the login, else `by`, else `api`.",
                    "operationId": "controlRun",
                    "security": security,
                    "parameters": [RUN_ID],
                    "requestBody": _json_body(_ref("RunControl")),
                    "responses": {**_ok("#/components/schemas/RunControlState"), **_errors(*WRITE_ERRORS)},
                },
            },
            "/dashboard/alerts": {
                "get": {
                    "summary": "Alerts, newest first, with who acknowledged them and how their delivery went",
                    "description": "Each alert is raised once per (kind, subject, threshold, window start). "
                    f"At most {LIST_LIMIT}; `truncated` says when older ones are left out. `open` counts "
                    "the alerts not yet acknowledged.",
                    "operationId": "listAlerts",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {"enum": list(ALERT_STATES), "default": "open"},
                        }
                    ],
                    "responses": {**_ok("#/components/schemas/AlertList"), **_errors(400)},
                }
            },
            "/runs/{run_id}/timeline": {
                "get": {
                    "summary": "The run's history: state changes, controls, notes and LLM calls, oldest first",
                    "description": "Read from the rows each change writes (no second log). At most the 300 "
                    "newest entries of each kind; `truncated` says when older ones are left out.",
                    "operationId": "getRunTimeline",
                    "parameters": [RUN_ID],
                    "responses": {**_ok("#/components/schemas/Timeline"), **_errors(404)},
                }
            },
            "/runs/{run_id}/phases/{phase_id}/control": {
                "post": {
                    "summary": "A person's move on a phase: retry, skip or approve, saying why",
                    "description": "retry: FAILED → QUEUED; skip: QUEUED or FAILED → SKIPPED; approve: GATE → "
                    "COMPLETE. Any other starting state, or a finished run, is a 409 saying why.",
                    "operationId": "controlPhase",
                    "security": security,
                    "parameters": [RUN_ID, PHASE_ID],
                    "requestBody": _json_body(_ref("PhaseControl")),
                    "responses": {**_ok("#/components/schemas/PhaseChange"), **_errors(*WRITE_ERRORS)},
                }
            },
            "/runs/{run_id}/phases/{phase_id}/update_status": {
                "post": {
                    "summary": "Move a phase and report its figures",
                    "description": "An unfinished phase may move to any state; a finished one may be "
                    "reopened (QUEUED, EXECUTING) while its run is not finished. Nothing in a finished "
                    "run moves (409).",
                    "operationId": "updatePhaseStatus",
                    "security": security,
                    "parameters": [RUN_ID, PHASE_ID],
                    "requestBody": _json_body(_ref("PhaseStatusUpdate")),
                    "responses": {**_ok("#/components/schemas/PhaseChange"), **_errors(*WRITE_ERRORS)},
                }
            },
            "/runs/{run_id}/phases/{phase_id}/record_issue": {
                "post": {
                    "summary": "Record an issue of a phase (one key counts once per phase)",
                    "description": "Takes a JSON body, or the original executor's query parameters "
                    "(issue_key, severity, source, category, evidence_refs repeated) with no body.",
                    "operationId": "recordIssue",
                    "security": security,
                    "parameters": [
                        RUN_ID,
                        PHASE_ID,
                        *(
                            {"name": name, "in": "query", "schema": {"type": "string"}}
                            for name in ("issue_key", "severity", "source", "category")
                        ),
                    ],
                    "requestBody": _json_body(_ref("IssueSpec"), required=False),
                    "responses": {
                        **_ok("#/components/schemas/IssueChange", "201", "Recorded for the first time"),
                        **_ok("#/components/schemas/IssueChange", "200", "A repeat: occurrences raised"),
                        **_errors(*WRITE_ERRORS),
                    },
                }
            },
            "/runs/{run_id}/phases/{phase_id}/builder_result": {
                "post": {
                    "summary": "A Builder's result: success and needs_review go to GATE, failed to FAILED",
                    "operationId": "builderResult",
                    "security": security,
                    "parameters": [RUN_ID, PHASE_ID],
                    "requestBody": _json_body(_ref("BuilderResult")),
                    "responses": {**_ok("#/components/schemas/PhaseChange"), **_errors(*WRITE_ERRORS)},
                }
            },
            "/runs/{run_id}/phases/{phase_id}/auditor_request": {
                "post": {
                    "summary": "Ask for an audit: the phase goes to GATE",
                    "operationId": "auditorRequest",
                    "security": security,
                    "parameters": [RUN_ID, PHASE_ID],
                    "requestBody": _json_body(_ref("EmptyBody"), required=False),
                    "responses": {**_ok("#/components/schemas/PhaseChange"), **_errors(*WRITE_ERRORS)},
                }
            },
            "/runs/{run_id}/phases/{phase_id}/auditor_result": {
                "post": {
                    "summary": "An Auditor's verdict",
                    "description": "approve → COMPLETE, revise → EXECUTING, escalate → FAILED.",
                    "operationId": "auditorResult",
                    "security": security,
                    "parameters": [RUN_ID, PHASE_ID],
                    "requestBody": _json_body(_ref("AuditorResult")),
                    "responses": {**_ok("#/components/schemas/PhaseChange"), **_errors(*WRITE_ERRORS)},
                }
            },
            "/api/usage": {
                "post": {
                    "summary": f'Record LLM usage: one event, or {{"events": [...]}} (at most {MAX_USAGE_EVENTS:,})',
                    "description": "Token fields: prompt_tokens counts all input (cached included), "
                    "cached_prompt_tokens the cached part; completion_tokens all output (reasoning included). "
                    "Anthropic's shape (input_tokens, output_tokens, cache_read_input_tokens) is accepted. "
                    "A request_id replayed with the same figures is a duplicate; with other figures a 409. "
                    "A batch with any bad event writes nothing. Body limit 8 MiB.",
                    "operationId": "recordUsage",
                    "security": security,
                    "requestBody": _json_body({"oneOf": [_ref("UsageEventIn"), _ref("UsageBatch")]}),
                    "responses": {
                        **_ok("#/components/schemas/UsageCounts", "201", "Recorded"),
                        **_ok("#/components/schemas/UsageCounts", "200", "Nothing new: all duplicates"),
                        **_errors(*WRITE_ERRORS),
                    },
                }
            },
            "/dashboard/usage": {
                "get": {
                    "summary": "Usage by provider, model and role over a rolling window, against quotas",
                    "operationId": "usageSummary",
                    "parameters": [
                        {
                            "name": "period",
                            "in": "query",
                            "schema": {"enum": PERIOD_NAMES, "default": DEFAULT_PERIOD},
                        }
                    ],
                    "responses": {**_ok("#/components/schemas/UsageSummary"), **_errors(400)},
                }
            },
            "/dashboard/models": {
                "get": {
                    "summary": "Every (role, category, complexity) mapping: its model and scope, the model now, why",
                    "description": "The original's list of `{role, category, complexity, model, scope}`, each row with "
                    "our figures beside them. `model` is what the mapping names (an override or the YAML), before "
                    "quotas; `effective_model` is what a call would use now. `?view=matrix` answers "
                    "`{run_id, cells}` instead.",
                    "operationId": "listModelMappings",
                    "parameters": [
                        {
                            "name": "run_id",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "apply this run's overrides",
                        },
                        {
                            "name": "view",
                            "in": "query",
                            "schema": {"enum": ["list", "matrix"], "default": "list"},
                            "description": "list: the original's rows; matrix: {run_id, cells}",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {"type": "array", "items": {"$ref": "#/components/schemas/ModelMapping"}},
                                            {"$ref": "#/components/schemas/ModelMatrix"},
                                        ]
                                    }
                                }
                            },
                        },
                        **_errors(400, 404),
                        **_errors(404),
                        "503": {
                            "description": "config/models.yaml has problems",
                            "content": {"application/json": {"schema": ERROR}},
                        },
                    },
                }
            },
            "/dashboard/models/override": {
                "post": {
                    "summary": "Set an override (global, or for one run); answers like the original, plus the cell",
                    "description": "The YAML file is never written; overrides live in the database and every change is "
                    "logged. Blank category or complexity means any. From the dashboard, an htmx form with "
                    "HX-Request and our own Origin instead of a JSON body.",
                    "operationId": "setModelOverride",
                    "security": security,
                    "requestBody": _json_body(_ref("OverrideSet")),
                    "responses": {**_ok("#/components/schemas/OverrideAnswer"), **_errors(*WRITE_ERRORS)},
                },
                "delete": {
                    "summary": "Remove an override (same keys, no model); answers like a set, plus the cell",
                    "operationId": "resetModelOverride",
                    "security": security,
                    "requestBody": _json_body(_ref("OverrideReset")),
                    "responses": {**_ok("#/components/schemas/OverrideAnswer"), **_errors(*WRITE_ERRORS)},
                },
            },
            "/dashboard/human-notes": {
                "post": {
                    "summary": "Leave a note for the agents: stored, added to the notes file, given to the next call",
                    "description": "Appended to AUTOPACK_NOTES_FILE in the original format. A file that cannot be "
                    "written loses nothing: the note is stored, the answer says why the file was not updated, and "
                    "`manage.py export_notes` rewrites it. From the dashboard, an htmx form instead of JSON.",
                    "operationId": "addHumanNote",
                    "security": security,
                    "requestBody": _json_body(_ref("HumanNoteIn")),
                    "responses": {**_ok("#/components/schemas/NoteAdded"), **_errors(*WRITE_ERRORS)},
                }
            },
            "/dashboard/demo/remove": {
                "post": {
                    "summary": "Delete every demo run and demo call; real figures stay as they are",
                    "description": "What `manage.py demo --remove` does. Demo data never counts in a quota, a "
                    "routing decision, a forecast or a total, so removing it changes no real figure.",
                    "operationId": "removeDemoData",
                    "security": security,
                    "requestBody": _json_body(_ref("EmptyBody"), required=False),
                    "responses": {**_ok("#/components/schemas/DemoRemoved"), **_errors(*WRITE_ERRORS)},
                }
            },
            "/dashboard/runs/{run_id}/status": {
                "get": {
                    "summary": "Live progress of a run",
                    "operationId": "runStatus",
                    "parameters": [RUN_ID],
                    "responses": {**_ok("#/components/schemas/RunStatus"), **_errors(404)},
                }
            },
        },
    }


_PAUSE_PROPS = {
    "paused": {"type": "boolean", "description": "a flag beside the state: LlmService refuses the run's calls"},
    "paused_at": TIME,
    "paused_by": {"type": ["string", "null"]},
    "pause_reason": {"type": ["string", "null"]},
}
_RUN_SUMMARY_PROPS = {
    "id": {"type": "string", "description": "the run_id"},
    "state": {"enum": STATES_RUN},
    "safety_profile": {"enum": list(SAFETY_PROFILES)},
    "run_scope": {"enum": list(RUN_SCOPES)},
    "created_at": TIME,
    "updated_at": TIME,
    "started_at": TIME,
    "completed_at": TIME,
    "token_cap": TOKENS,
    "max_phases": COUNT,
    "max_duration_minutes": COUNT,
    "tokens_used": TOKENS,
    "tokens_reported": {**TOKENS, "description": "what the executor reported"},
    "tokens_metered": {**TOKENS, "description": "the sum of recorded LLM calls"},
    "minor_issues_count": COUNT,
    "major_issues_count": COUNT,
    "failure_reason": {"type": ["string", "null"]},
    "budget_usd": {"type": ["number", "null"], "description": "dollar budget of the run's LLM calls"},
    **_PAUSE_PROPS,
    "is_demo": {"type": "boolean", "description": "loaded by `manage.py demo`; counts in no real figure"},
}
_PHASE_PROPS = {
    "id": {"type": "integer"},
    "phase_id": {"type": "string"},
    "run_id": {"type": "string"},
    "tier_id": {"type": "string"},
    "phase_index": {"type": "integer"},
    "name": {"type": "string"},
    "description": {"type": "string"},
    "task_category": {"type": ["string", "null"]},
    "complexity": {"enum": [*COMPLEXITIES, None]},
    "builder_mode": {"type": ["string", "null"]},
    "state": {"enum": STATES_PHASE},
    "builder_attempts": COUNT,
    "auditor_attempts": COUNT,
    "tokens_used": TOKENS,
    "tokens_reported": {**TOKENS, "description": "what the executor reported"},
    "tokens_metered": {**TOKENS, "description": "the sum of recorded LLM calls"},
    "minor_issues_count": COUNT,
    "major_issues_count": COUNT,
    "created_at": TIME,
    "updated_at": TIME,
    "started_at": TIME,
    "completed_at": TIME,
}
SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error", "details"],
        "properties": {
            "error": {"type": "string"},
            "details": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "RunSummary": {"type": "object", "properties": _RUN_SUMMARY_PROPS},
    "Phase": {"type": "object", "properties": _PHASE_PROPS},
    "Tier": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "tier_id": {"type": "string"},
            "run_id": {"type": "string"},
            "tier_index": {"type": "integer"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "state": {"enum": STATES_TIER},
            "tokens_used": TOKENS,
            "minor_issues_count": COUNT,
            "major_issues_count": COUNT,
            "phases": {"type": "array", "items": {"$ref": "#/components/schemas/Phase"}},
        },
    },
    "Run": {
        "type": "object",
        "properties": {
            **_RUN_SUMMARY_PROPS,
            "tiers": {"type": "array", "items": {"$ref": "#/components/schemas/Tier"}},
            "phases": {"type": "array", "items": {"$ref": "#/components/schemas/Phase"}},
        },
    },
    "RunList": {
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "page": {"type": "integer"},
            "page_size": {"type": "integer"},
            "num_pages": {"type": "integer"},
            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/RunSummary"}},
        },
    },
    "PhaseChange": {
        "type": "object",
        "properties": {
            "phase": {"$ref": "#/components/schemas/Phase"},
            "run": {"$ref": "#/components/schemas/RunSummary"},
        },
    },
    "IssueChange": {
        "type": "object",
        "properties": {
            "issue": {
                "type": "object",
                "properties": {
                    "issue_key": {"type": "string"},
                    "severity": {"enum": list(ISSUE_SEVERITIES)},
                    "source": {"type": "string"},
                    "category": {"type": "string"},
                    "evidence_refs": {"type": "array", "items": {"type": "string"}},
                    "occurrences": {"type": "integer"},
                },
            },
            "phase": {"$ref": "#/components/schemas/Phase"},
            "run": {"$ref": "#/components/schemas/RunSummary"},
        },
    },
    "DemoRemoved": {
        "type": "object",
        "properties": {"removed_runs": {"type": "integer"}, "removed_calls": {"type": "integer"}},
    },
    "UsageCounts": {
        "type": "object",
        "properties": {
            "imported": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "rejected": {"type": "integer"},
        },
    },
    "UsageSums": {
        "type": "object",
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
            "cost_usd": {"type": ["string", "null"], "description": "decimal, USD; null for a model without a price"},
            "calls": {"type": "integer"},
        },
    },
    "UsageSummary": {
        "type": "object",
        "properties": {
            "period": {"enum": PERIOD_NAMES},
            "window_start": {"type": "string", "format": "date-time"},
            "window_end": {"type": "string", "format": "date-time"},
            "providers": {
                "type": "array",
                "items": {
                    "allOf": [
                        {"$ref": "#/components/schemas/UsageSums"},
                        {
                            "type": "object",
                            "properties": {
                                "provider": {"type": "string"},
                                "period": {"enum": PERIOD_NAMES},
                                "cap_tokens": {"type": ["integer", "null"]},
                                "cap_estimated": {"type": "boolean"},
                                "percent_of_cap": {"type": ["number", "null"]},
                                "level": {"enum": list(USAGE_LEVELS)},
                                "forecast": {"type": ["string", "null"], "format": "date-time"},
                            },
                        },
                    ]
                },
            },
            "models": {
                "type": "array",
                "items": {
                    "allOf": [
                        {"$ref": "#/components/schemas/UsageSums"},
                        {
                            "type": "object",
                            "properties": {
                                "provider": {"type": "string"},
                                "model": {"type": "string"},
                                "cost_usd": {"type": ["string", "null"], "description": "null when unpriced"},
                                "priced": {"type": "boolean"},
                            },
                        },
                    ]
                },
            },
            "roles": {
                "type": "object",
                "properties": {
                    "core": {"$ref": "#/components/schemas/UsageSums"},
                    "aux": {"$ref": "#/components/schemas/UsageSums"},
                },
            },
            "config_error": {"type": ["string", "null"]},
        },
    },
    "ModelCell": {
        "type": "object",
        "properties": {
            "role": {"type": "string"},
            "category": {"type": "string"},
            "complexity": {"type": "string"},
            "baseline_model": {"type": ["string", "null"]},
            "effective_model": {"type": ["string", "null"]},
            "provider": {"type": "string"},
            "source": {"enum": ["yaml", "global override", "run override", None]},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "redirected": {"type": "boolean", "description": "quotas or a cooldown moved the call off its model"},
            "error": {"type": ["string", "null"], "description": "why a call in this cell would be refused now"},
        },
    },
    "ModelMapping": {
        "description": "The original's row first, then the cell's figures",
        "allOf": [
            {"$ref": "#/components/schemas/ModelCell"},
            {
                "type": "object",
                "required": ["role", "category", "complexity", "model", "scope"],
                "properties": {
                    "model": {
                        "type": ["string", "null"],
                        "description": "what the mapping names (an override or the YAML), before quotas",
                    },
                    "scope": {"enum": list(SCOPES), "description": "run when a run override names the model"},
                    "run_id": {"type": ["string", "null"]},
                },
            },
        ],
    },
    "OverrideAnswer": {
        "description": "The original's answer (message and the keys as sent), then the cell they land in",
        "allOf": [
            {"$ref": "#/components/schemas/ModelCell"},
            {
                "type": "object",
                "required": ["message", "role", "category", "complexity", "model", "scope"],
                "properties": {
                    "message": {
                        "type": "string",
                        "examples": ["Global model mapping updated", "Run model mapping reset"],
                    },
                    "model": {"type": ["string", "null"]},
                    "scope": {"enum": list(SCOPES)},
                    "run_id": {"type": ["string", "null"]},
                },
            },
        ],
    },
    "ModelMatrix": {
        "type": "object",
        "properties": {
            "run_id": {"type": ["string", "null"]},
            "cells": {"type": "array", "items": {"$ref": "#/components/schemas/ModelCell"}},
        },
    },
    "NoteAdded": {
        "type": "object",
        "properties": {
            "message": {"const": "Note added successfully"},
            "timestamp": {"type": "string", "format": "date-time"},
            "notes_file": {"type": "string"},
            "id": {"type": "integer"},
            "file_written": {"type": "boolean"},
            "file_error": {"type": ["string", "null"]},
        },
    },
    "RunStatus": {
        "type": "object",
        "properties": {
            "run_id": {"type": "string"},
            "state": {"enum": STATES_RUN},
            "current_tier_name": {"type": ["string", "null"]},
            "current_phase_name": {"type": ["string", "null"]},
            "current_tier_index": {"type": ["integer", "null"]},
            "current_phase_index": {"type": ["integer", "null"]},
            "total_tiers": {"type": "integer"},
            "total_phases": {"type": "integer"},
            "completed_tiers": {"type": "integer"},
            "completed_phases": {"type": "integer", "description": "COMPLETE and SKIPPED phases"},
            "percent_complete": {"type": "number", "minimum": 0, "maximum": 100},
            "tiers_percent_complete": {"type": "number", "minimum": 0, "maximum": 100},
            "tokens_used": {**TOKENS, "description": "the larger of tokens_reported and tokens_metered"},
            "tokens_reported": TOKENS,
            "tokens_metered": TOKENS,
            "token_cap": TOKENS,
            "token_utilization": {"type": "number", "minimum": 0, "description": "percent of the cap; may pass 100"},
            "minor_issues_count": COUNT,
            "major_issues_count": COUNT,
            "elapsed_seconds": {"type": "integer"},
            "eta_seconds": {"type": ["integer", "null"]},
            **_PAUSE_PROPS,
            "failure_reason": {"type": ["string", "null"]},
        },
    },
    "AlertList": {
        "type": "object",
        "required": ["open", "alerts", "truncated"],
        "properties": {
            "open": COUNT,
            "truncated": {"type": "boolean"},
            "alerts": {"type": "array", "items": _ref("Alert")},
        },
    },
    "Alert": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"enum": list(Alert.Kind.values)},
            "subject": {"type": "string"},
            "threshold": {"type": "integer", "description": "percent crossed, stuck minutes, or 0 for an event"},
            "window_start": {"type": "string", "format": "date-time"},
            "message": {"type": "string"},
            "run_id": {"type": ["string", "null"]},
            "phase_id": {"type": ["string", "null"]},
            "provider": {"type": ["string", "null"]},
            "raised_at": {"type": "string", "format": "date-time"},
            "acknowledged_at": TIME,
            "acknowledged_by": {"type": ["string", "null"]},
            "delivery": {"enum": list(Alert.Delivery.values)},
            "delivery_attempts": COUNT,
            "delivery_log": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "attempt": {"type": "integer"},
                        "at": {"type": "string", "format": "date-time"},
                        "outcome": {"type": "string", "description": "sent, or what went wrong"},
                    },
                },
            },
            "delivered_at": TIME,
            "next_attempt_at": TIME,
        },
    },
    "Timeline": {
        "type": "object",
        "properties": {
            "run_id": {"type": "string"},
            "truncated": {"type": "boolean"},
            "entries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["at", "kind", "what", "by"],
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "kind": {"enum": ["run", "control", "state", "note", "call"]},
                        "phase_id": {"type": ["string", "null"]},
                        "what": {"type": "string"},
                        "by": {"type": "string", "description": "who or what caused it"},
                        "reason": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
    "RunControlState": {
        "type": "object",
        "required": ["run_id", "directive", "state", "paused"],
        "properties": {
            "run_id": {"type": "string"},
            "directive": {"enum": list(DIRECTIVES)},
            "state": {"enum": STATES_RUN},
            **_PAUSE_PROPS,
            "failure_reason": {"type": ["string", "null"]},
            "last_action": {
                "type": ["object", "null"],
                "description": "the latest pause, resume or cancel: who did it, when and why",
                "properties": {
                    "action": {"enum": list(RUN_ACTIONS)},
                    "by": {"type": "string"},
                    "reason": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}
