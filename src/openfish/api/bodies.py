"""Reading request bodies sent as JSON or MessagePack into pydantic models."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgpack
from fastapi import Request
from pydantic import BaseModel, BeforeValidator, ValidationError

from openfish.api.handlers import describe_validation_errors
from openfish.errors import InvalidRequest, UnsupportedMediaType

ModelT = TypeVar("ModelT", bound=BaseModel)


def _whole_number(value: object) -> object:
    # JSON Schema counts 3.0 as an integer, so accept it; a string or a boolean is not a number.
    if isinstance(value, bool | str):
        raise ValueError("must be a number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer field that takes JSON integers (and integral floats) but never strings or booleans.
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]

JSON_TYPES = ("application/json",)
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the body in both JSON and MessagePack."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ref}, "application/msgpack": {"schema": ref}},
        }
    }


async def read_model(request: Request, model: type[ModelT]) -> ModelT:
    """The body as ``model``; 415 for other content types, 400 naming the field otherwise."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    try:
        if media_type in JSON_TYPES:
            return model.model_validate_json(raw)
        if media_type in MSGPACK_TYPES:
            return model.model_validate(unpack_map(raw))
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise InvalidRequest(describe_validation_errors(errors)) from exc
    raise UnsupportedMediaType(
        "Send the body as application/json or application/msgpack"
        + (f", not {media_type}." if media_type else ".")
    )


def validate_model(model: type[ModelT], data: Any) -> ModelT:
    """``data`` as ``model``, or 400 naming the offending fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise InvalidRequest(describe_validation_errors(errors)) from exc


def unpack_map(raw: bytes, what: str = "the request body") -> dict[str, Any]:
    """``raw`` as a MessagePack map with string keys, or 400 saying what is wrong with ``what``."""
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except (msgpack.exceptions.UnpackException, ValueError, TypeError) as exc:
        # Truncated or trailing data, reserved bytes, invalid UTF-8 in a string, non-string keys.
        raise InvalidRequest(f"{what} is not valid MessagePack ({type(exc).__name__})") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a MessagePack map")
    return value
