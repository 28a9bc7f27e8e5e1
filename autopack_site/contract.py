"""Request bodies as pydantic models: strict field types, our error shape, and their OpenAPI schemas.

Each JSON body is one `RequestModel`. `validate_body` checks a parsed body against it and raises
InvalidInput with every problem at once, keyed by field path (`phases[2].tier_id`), in our words.
`openapi_schemas` gives the models' JSON schemas for the OpenAPI document.
"""

import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from autopack_site.errors import InvalidInput
from autopack_site.limits import IDENTIFIER, IDENTIFIER_RULE, NAME_CHARS

REF_TEMPLATE = "#/components/schemas/{model}"


def drop_nulls(data: Any) -> Any:
    """JSON null means "not given": executors send null for what they do not know."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value is not None}
    return data


class RequestModel(BaseModel):
    """A request body: no coercion ("5" is not 5, true is not 1), unknown keys ignored, null as absent.

    The field types built below are strict by themselves too, so a pydantic dataclass using them is.
    """

    model_config = ConfigDict(strict=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return drop_nulls(data)


class EmptyBody(RequestModel):
    """No body, or any JSON object: its fields are not read."""


def choice(values) -> Any:
    """A Literal of `values` (an enum's .values or a tuple): one list of states, never a copy."""
    return Literal[tuple(values)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "may not be blank")
    return value


def _identifier(value: str) -> str:
    _not_blank(value)
    if not IDENTIFIER.fullmatch(value):
        raise PydanticCustomError("identifier", IDENTIFIER_RULE)
    return value


def text(max_length: int = NAME_CHARS) -> Any:
    return Annotated[str, Strict(), Field(max_length=max_length)]


def required_text(max_length: int = NAME_CHARS) -> Any:
    """Text that must say something: blank is refused like missing."""
    return Annotated[str, Strict(), Field(min_length=1, max_length=max_length), AfterValidator(_not_blank)]


def identifier(max_length: int) -> Any:
    return Annotated[
        str,
        Strict(),
        Field(max_length=max_length, json_schema_extra={"pattern": f"^{IDENTIFIER.pattern}$"}),
        AfterValidator(_identifier),
    ]


def integer(*, minimum: int = 0, maximum: int) -> Any:
    return Annotated[int, Strict(), Field(ge=minimum, le=maximum)]


def _dollars(minimum: Decimal, maximum: int):
    def check(value: Any) -> Decimal:
        # A JSON number (int or float), or a Decimal from the admin's form; never a bool or a string.
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise PydanticCustomError("dollars", "must be a number of dollars")
        try:
            amount = Decimal(str(value)).quantize(Decimal("0.0001"))
        except InvalidOperation:
            raise PydanticCustomError("dollars", "must be a number of dollars") from None
        if amount < minimum:
            raise PydanticCustomError("dollars", f"must be at least {minimum}")
        if amount > maximum:
            raise PydanticCustomError("dollars", f"must be at most {maximum:,}")
        return amount

    return check


def dollars(*, minimum: str, maximum: int) -> Any:
    """An amount in USD, kept to four decimal places; a number in JSON."""
    return Annotated[
        Decimal,
        BeforeValidator(_dollars(Decimal(minimum), maximum)),
        WithJsonSchema({"type": "number", "minimum": float(minimum), "maximum": maximum}),
    ]


def _string_list(max_items: int, max_length: int):
    def check(value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise PydanticCustomError("string_list", "must be a list of strings")
        if len(value) > max_items:
            raise PydanticCustomError("string_list", f"may hold at most {max_items} items")
        if any(len(item) > max_length for item in value):
            raise PydanticCustomError("string_list", f"items may be at most {max_length} characters")
        return value

    return check


def string_list(*, max_items: int, max_length: int) -> Any:
    """A list of short strings, refused as a whole: one message at the list's path."""
    return Annotated[
        list[Annotated[str, Strict(), Field(max_length=max_length)]],
        Field(max_length=max_items),
        BeforeValidator(_string_list(max_items, max_length)),
    ]


@functools.cache
def _adapter(model) -> TypeAdapter:
    return TypeAdapter(model)


def validate_body(model, data: Any, message: str) -> Any:
    """`data` as `model` (a RequestModel or pydantic dataclass), or InvalidInput(message) naming every fault."""
    try:
        return _adapter(model).validate_python(data)
    except ValidationError as exc:
        raise InvalidInput(message, error_details(exc)) from None


def error_details(exc: ValidationError) -> dict[str, str]:
    """Our `details`: field path to a readable message, the first problem of each field."""
    details: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        details.setdefault(field_path(error["loc"]), _message(error))
    return details


def field_path(loc: tuple) -> str:
    """('phases', 2, 'tier_id') as `phases[2].tier_id`; the body itself is `body`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


_SAME_MESSAGE_FOR = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "dataclass_type": "must be a JSON object",
}


def _message(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _SAME_MESSAGE_FOR:
        return _SAME_MESSAGE_FOR[kind]
    if kind == "literal_error":
        if not isinstance(error["input"], str):
            return "must be a string"
        # pydantic spells the choices "'a', 'b' or 'c'"; ours are plain words without quotes.
        return "must be one of: " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "string_too_long":
        return f"may be at most {ctx['max_length']} characters"
    if kind == "string_too_short":
        return "may not be blank"
    if kind == "too_long":
        return f"may hold at most {ctx['max_length']} items"
    if kind == "too_short":
        return "may not be empty"
    # Our own errors (PydanticCustomError) already read as we write them.
    return error["msg"]


def field_problems(title: str, problems: dict[tuple, tuple[str, Any]]) -> ValidationError:
    """Problems found across fields (a duplicate id, an unknown tier), each at its own path.

    Raised inside a field validator, pydantic puts them under that field's path.
    """
    return ValidationError.from_exception_data(
        title,
        [
            {"type": PydanticCustomError("cross_field", reason), "loc": loc, "input": value}
            for loc, (reason, value) in problems.items()
        ],
    )


def openapi_schemas(*models) -> dict[str, dict]:
    """The models' JSON schemas, and the models they use, as OpenAPI components by class name."""
    components: dict[str, dict] = {}
    for model in models:
        schema = _adapter(model).json_schema(ref_template=REF_TEMPLATE)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components


# --- the OpenAI-compatible gateway: only the fields it reads are checked; the rest pass through as sent.

GatewayModel = Annotated[str, Strict(), Field(min_length=1, max_length=200)]
GatewayHints = dict[str, Annotated[str, Strict(), Field(max_length=512)]]


class GatewayChatBody(RequestModel):
    """POST /v1/chat/completions: OpenAI's chat completion request."""

    model: GatewayModel
    messages: Annotated[list[dict[str, Any]], Field(min_length=1)]
    stream: Annotated[bool, Strict()] = False
    metadata: GatewayHints | None = None


class GatewayResponsesBody(RequestModel):
    """POST /v1/responses: OpenAI's response request."""

    model: GatewayModel
    input: Annotated[str, Strict()] | list[Any]
    instructions: Annotated[str, Strict()] | None = None
    stream: Annotated[bool, Strict()] = False
    metadata: GatewayHints | None = None
