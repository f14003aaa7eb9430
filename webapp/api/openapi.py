"""The OpenAPI 3.0.3 document of every /api/ route, derived from the models the API reads and sends.

apispec assembles the document. Each schema under components is pydantic's JSON Schema of one model
of chime.schemas (or webapp.errors.ErrorBody), written in OpenAPI 3.0's dialect by `OpenApi30Schema`;
each operation is one row of webapp.api.operations.OPERATIONS. Add a field to a model and the
document follows; add a route and add its row (a test fails until the two agree).
"""
from __future__ import annotations

import copy
import functools
import re
from typing import Any, ClassVar, Literal

from apispec import APISpec
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema
from rq.job import JOB_ID_PATTERN

import jobs.registry as registry
from chime.config import MAX_CONTENT_LENGTH_BYTES
from chime.schemas.audit import AuditEventRead
from chime.schemas.channel import ChannelInput, ChannelPatch, ChannelRead, DeliveryRead, ChannelTestResult
from chime.schemas.common import page_of
from chime.schemas.cron import CronPreview
from chime.schemas.execution import ExecutionDetail, ExecutionRead, RetryResult, RunInput, RunResult
from chime.schemas.graph import TaskGraphRead
from chime.schemas.health import Health, Liveness, Readiness
from chime.schemas.job import JobRead
from chime.schemas.notification import NotificationRead, ReadAllResult
from chime.schemas.reconcile import ReconcileReport, ReconcileRequest
from chime.schemas.rule import (MaintenanceInput, MaintenanceRead, RuleInput, RulePatch, RuleRead, TaskMuteInput,
                               TaskMuteRead)
from chime.schemas.queue import QueuedJobRead, QueueRead, WorkerRead
from chime.schemas.stats import Stats
from chime.schemas.control import BulkInput, BulkResult, CloneInput, PauseInput
from chime.schemas.task import TaskInput, TaskPatch, TaskRead
from chime.schemas.user import TokenCreated, TokenInput, TokenRead, UserInput, UserPatch, UserRead
from chime.validation import MAX_ID
from webapp.api.operations import OPERATIONS, Body, Operation, Reply
from webapp.errors import ErrorBody

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
BEARER = "bearerAuth"
JSON = "application/json"
SCHEMA_REF = "#/components/schemas/{model}"
ROW_ID = {"schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "example": 1}
JOB_ID = {"schema": {"type": "string", "pattern": f"^{JOB_ID_PATTERN.pattern}$"}}  # what RQ accepts as a job id
IGNORED_VERSION = {"type": "integer", "readOnly": True, "description": "Accepted and ignored"}
Mode = Literal["validation", "serialization"]

# components/schemas: name -> (model, whether it describes what the API reads or what it sends)
COMPONENTS: dict[str, tuple[type[BaseModel], Mode]] = {
    "Error": (ErrorBody, "serialization"),
    "Task": (TaskRead, "serialization"),
    "TaskInput": (TaskInput, "validation"),
    "TaskPatch": (TaskPatch, "validation"),
    "TaskPage": (page_of(TaskRead, "TaskPage"), "serialization"),
    "Execution": (ExecutionRead, "serialization"),
    "ExecutionDetail": (ExecutionDetail, "serialization"),
    "RunInput": (RunInput, "validation"),
    "RetryResult": (RetryResult, "serialization"),
    "ExecutionPage": (page_of(ExecutionRead, "ExecutionPage"), "serialization"),
    "Notification": (NotificationRead, "serialization"),
    "NotificationPage": (page_of(NotificationRead, "NotificationPage"), "serialization"),
    "ReadAllResult": (ReadAllResult, "serialization"),
    "RunResult": (RunResult, "serialization"),
    "Job": (JobRead, "serialization"),
    "CronPreview": (CronPreview, "serialization"),
    "Stats": (Stats, "serialization"),
    "ReconcileReport": (ReconcileReport, "serialization"),
    "ReconcileRequest": (ReconcileRequest, "serialization"),
    "Liveness": (Liveness, "serialization"),
    "Readiness": (Readiness, "serialization"),
    "Health": (Health, "serialization"),
    "PauseInput": (PauseInput, "validation"),
    "BulkInput": (BulkInput, "validation"),
    "BulkResult": (BulkResult, "serialization"),
    "CloneInput": (CloneInput, "validation"),
    "AuditEvent": (AuditEventRead, "serialization"),
    "AuditEventPage": (page_of(AuditEventRead, "AuditEventPage"), "serialization"),
    "TaskGraph": (TaskGraphRead, "serialization"),
    "User": (UserRead, "serialization"),
    "UserInput": (UserInput, "validation"),
    "UserPatch": (UserPatch, "validation"),
    "UserPage": (page_of(UserRead, "UserPage"), "serialization"),
    "Token": (TokenRead, "serialization"),
    "TokenInput": (TokenInput, "validation"),
    "TokenCreated": (TokenCreated, "serialization"),
    "TokenPage": (page_of(TokenRead, "TokenPage"), "serialization"),
    "Queue": (QueueRead, "serialization"),
    "QueuedJob": (QueuedJobRead, "serialization"),
    "QueuedJobPage": (page_of(QueuedJobRead, "QueuedJobPage"), "serialization"),
    "Worker": (WorkerRead, "serialization"),
    "Channel": (ChannelRead, "serialization"),
    "ChannelInput": (ChannelInput, "validation"),
    "ChannelPatch": (ChannelPatch, "validation"),
    "ChannelPage": (page_of(ChannelRead, "ChannelPage"), "serialization"),
    "ChannelTestResult": (ChannelTestResult, "serialization"),
    "Delivery": (DeliveryRead, "serialization"),
    "DeliveryPage": (page_of(DeliveryRead, "DeliveryPage"), "serialization"),
    "Rule": (RuleRead, "serialization"),
    "RuleInput": (RuleInput, "validation"),
    "RulePatch": (RulePatch, "validation"),
    "RulePage": (page_of(RuleRead, "RulePage"), "serialization"),
    "Maintenance": (MaintenanceRead, "serialization"),
    "MaintenanceInput": (MaintenanceInput, "validation"),
    "TaskMute": (TaskMuteRead, "serialization"),
    "TaskMuteInput": (TaskMuteInput, "validation"),
}

# components/responses: the shared error answers, by status
ERROR_RESPONSES = {
    400: ("BadRequest", "Invalid input: `fields` names each bad field or query argument"),
    401: ("Unauthorized", "Missing or invalid bearer token"),
    403: ("Forbidden", "The token's user has a role below the one this operation needs"),
    404: ("NotFound", "No such object (or the id in the path is not a valid id)"),
    405: ("MethodNotAllowed", "The path exists but not with this method; `Allow` lists the methods"),
    409: ("Conflict", "The request conflicts with the current state (duplicate name, dependent tasks)"),
    413: ("PayloadTooLarge", f"The request body is larger than {MAX_CONTENT_LENGTH_BYTES} bytes"),
    415: ("UnsupportedMediaType", "The request body is not application/json"),
    503: ("ServiceUnavailable", "A backing service (Redis) is unavailable"),
}
ERROR_HEADERS = {405: {"Allow": "Allowed methods"}}

INFO_DESCRIPTION = (
    "Scheduled tasks, their execution log and notifications. Every route but the /api/health/ ones needs "
    "`Authorization: Bearer <token>`. Errors are JSON `{error, message, fields?}`; a method a "
    "path does not support answers 405 (the MethodNotAllowed response) with an `Allow` header. "
    "Paths end with a slash as shown (the slash-less form is accepted too)."
)
TAGS = {
    "tasks": "Task definitions and their runs",
    "logs": "The execution log",
    "notifications": "Notifications about runs",
    "system": "Jobs, cron preview, statistics, health",
    "audit": "The audit trail: every change and operator action, who did it, when and from where",
    "users": "Users and their roles (admins only), and API tokens (each user their own)",
    "queues": "The jobs waiting on each queue (cancel one) and the workers",
}


class OpenApi30Schema(GenerateJsonSchema):
    """pydantic's JSON Schema in OpenAPI 3.0's dialect: `nullable` (and null among an enum's values)
    instead of a null type, enums inline, `enum` instead of `const`, no titles, no `default: null` on an
    argument that is absent rather than null; models named by `component_names`."""

    component_names: ClassVar[dict[str, str]] = {}

    def normalize_name(self, name: str) -> str:
        return self.component_names.get(name) or super().normalize_name(name)

    def model_fields_schema(self, schema: core_schema.ModelFieldsSchema) -> JsonSchemaValue:
        result = super().model_fields_schema(schema)
        for field_schema in result.get("properties", {}).values():
            field_schema.pop("title", None)  # a form's label (chime.schemas.task), not the API's
        return result

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        result = without_title(super().model_schema(schema))
        if self.mode == "serialization" and result.get("additionalProperties") is False:
            del result["additionalProperties"]  # what the API sends may gain fields; a client ignores them
        return result

    def generate_inner(self, schema: Any) -> JsonSchemaValue:
        if schema["type"] != "enum":
            return super().generate_inner(schema)
        inline = {key: value for key, value in schema.items() if key != "ref"}
        result = super().generate_inner(inline)  # type: ignore[arg-type]
        result.pop("description", None)  # the enum class's docstring; the field says what it holds
        return without_title(result)

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        result = super().literal_schema(schema)
        if "const" in result:
            result["enum"] = [result.pop("const")]
        return result

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if "$ref" in inner:
            return {"allOf": [inner], "nullable": True}
        result = {**inner, "nullable": True}
        if "enum" in result and None not in result["enum"]:
            result["enum"] = [*result["enum"], None]
        return result

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        result = super().default_schema(schema)
        if "default" in result and result["default"] is None and not result.get("nullable"):
            del result["default"]
        return result


def without_title(schema: JsonSchemaValue) -> JsonSchemaValue:
    schema.pop("title", None)
    return schema


def component_schemas(job_names: tuple[str, ...]) -> dict[str, Any]:
    """components/schemas: every model of COMPONENTS, and the models they hold, by name."""
    generator = type("NamedOpenApi30Schema", (OpenApi30Schema,), {
        "component_names": {model.__name__: name for name, (model, _) in COMPONENTS.items()}})
    _, document = models_json_schema([(model, mode) for model, mode in COMPONENTS.values()],
                                     ref_template=SCHEMA_REF, schema_generator=generator)
    schemas = document["$defs"]
    read_only = {name: schema for name, schema in schemas["Task"]["properties"].items() if schema.get("readOnly")}
    for name in ("TaskInput", "TaskPatch"):
        properties = schemas[name]["properties"]
        properties["job"]["enum"] = list(job_names)  # the registered jobs are known at run time only
        properties.update({**read_only, "version": IGNORED_VERSION})  # accepted and ignored: see TaskInput
    return schemas


# --------------------------------------------------------------------------- operations


def path_parameters(row: Operation) -> list[dict[str, Any]]:
    """Every {name_id} in a row's path: the id of a row (an integer), or of an RQ job if the row says so."""
    return [{"name": name, "in": "path", "required": True, "description": f"Id of the {name.removesuffix('_id')}",
             **(JOB_ID if name in row.path_strings else ROW_ID)}
            for name in re.findall(r"\{(\w+)\}", row.path)]


def query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    """One query parameter per field of `model`; its examples become the parameter's example."""
    if model is None:
        return []
    schema = model.model_json_schema(schema_generator=OpenApi30Schema)
    parameters = []
    for name, field_schema in schema["properties"].items():
        parameter = {"name": name, "in": "query", "required": name in schema.get("required", ()),
                     "description": field_schema.pop("description"), "schema": field_schema}
        if "examples" in field_schema:
            parameter["example"] = field_schema.pop("examples")[0]
        parameters.append(parameter)
    return parameters


def reply(answer: Reply) -> dict[str, Any]:
    result: dict[str, Any] = {"description": answer.description}
    if answer.schema is not None:
        result["content"] = {JSON: {"schema": answer.schema}}
    if answer.media:
        result["content"] = {media: {"schema": schema} for media, schema in answer.media.items()}
    if answer.headers:
        result["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                             for name, text in answer.headers.items()}
    return result


def request_body(body: Body) -> dict[str, Any]:
    examples = {name: {"summary": summary, "value": value} for name, (summary, value) in body.examples.items()}
    return {"required": body.required, "description": body.description,
            "content": {JSON: {"schema": body.schema, "examples": examples}}}


def operation(row: Operation) -> dict[str, Any]:
    """The operation object of one row; apispec turns the component names in it into references."""
    responses: dict[int, Any] = {status: reply(answer) for status, answer in row.replies.items()}
    for status in {*row.errors, *(() if row.public else (401,))}:
        responses[status] = ERROR_RESPONSES[status][0]
    result: dict[str, Any] = {"operationId": row.operation_id, "tags": [row.tag], "summary": row.summary,
                              "responses": dict(sorted(responses.items()))}
    if parameters := [*path_parameters(row), *query_parameters(row.query)]:
        result["parameters"] = parameters
    if row.body is not None:
        result["requestBody"] = request_body(row.body)
    if row.public:
        result["security"] = []
    return result


# --------------------------------------------------------------------------- the document


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document, a fresh copy on every call (callers may change it freely)."""
    return copy.deepcopy(built_document(tuple(spec.name for spec in registry.all_jobs())))


@functools.lru_cache(maxsize=4)
def built_document(job_names: tuple[str, ...]) -> dict[str, Any]:
    spec = APISpec(title="Chime API", version=API_VERSION, openapi_version=OPENAPI_VERSION,
                   info={"description": INFO_DESCRIPTION}, security=[{BEARER: []}])
    for name, description in TAGS.items():
        spec.tag({"name": name, "description": description})
    spec.components.security_scheme(BEARER, {"type": "http", "scheme": "bearer",
                                             "description": "An API token from API_TOKENS or `flask create-token`"})
    for name, schema in component_schemas(job_names).items():
        spec.components.schema(name, schema)
    for status, (name, description) in ERROR_RESPONSES.items():
        spec.components.response(name, reply(Reply(description, "Error", ERROR_HEADERS.get(status, {}))))
    for path in dict.fromkeys(row.path for row in OPERATIONS):
        spec.path(path=path, operations={row.method: operation(row) for row in OPERATIONS if row.path == path})
    return spec.to_dict()
