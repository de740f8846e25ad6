"""Reading request bodies and realtime messages sent as JSON or MessagePack into pydantic models.

Every JSON or MessagePack document a client sends is parsed here, with a nesting limit, and
validated in strict mode: a MessagePack ``bin`` is never taken for a string, a string never for
a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Annotated, Any, TypeVar

import msgpack
import pydantic_core
from fastapi import Request
from pydantic import BaseModel, BeforeValidator, ValidationError
from starlette.datastructures import UploadFile

from openfish.api.handlers import describe_validation_errors
from openfish.errors import InvalidRequest, UnsupportedMediaType

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Deepest nesting of arrays and objects accepted in a body or message; ours need three levels.
MAX_NESTING = 32


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
    if media_type in JSON_TYPES:
        return validate_model(model, load_json(raw))
    if media_type in MSGPACK_TYPES:
        return validate_model(model, unpack_map(raw))
    raise UnsupportedMediaType(
        "Send the body as application/json or application/msgpack"
        + (f", not {media_type}." if media_type else ".")
    )


#: How multipart forms write booleans.
FORM_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
#: Values one repeated ``name[]`` field or one ``name[key]`` map of a form may carry at most.
FORM_ITEMS = 8


def _form_number(kind: type[int] | type[float]) -> Callable[[object], object]:
    def parse(value: object) -> object:
        # Forms carry only strings: one that spells a finite number is that number; anything else
        # is left for the field's own check to refuse by name.
        if isinstance(value, str):
            try:
                number = kind(value)
            except ValueError:
                return value
            return number if math.isfinite(number) else value
        return value

    return parse


#: Number fields of multipart forms: the form's string read as the number (strict validation
#: would refuse the string), anything else refused by the field's own constraints.
FormInt = Annotated[int, BeforeValidator(_form_number(int))]
FormFloat = Annotated[float, BeforeValidator(_form_number(float))]


async def read_file_form(
    request: Request,
    file_field: str,
    fields: Collection[str],
    flags: Collection[str] = (),
    *,
    lists: Collection[str] = (),
    maps: Collection[str] = (),
) -> tuple[dict[str, Any], bytes]:
    """A multipart form of one file and plain fields: the ``fields`` given (empty ones left out,
    ``flags`` read as booleans), each of ``lists`` as the list of its repeated ``name[]`` values,
    each of ``maps`` as the dict of its ``name[key]`` values (or, sent as plain ``name``, its
    string) — and the file's bytes. 415 for a body that is not multipart; 400 for another field,
    a file where a plain field belongs, or no file."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType(f"Send multipart/form-data with the file as `{file_field}`.")
    plain = {*fields, *maps}
    expected = ", ".join([file_field, *fields, *(f"{n}[]" for n in lists), *(f"{n}[...]" for n in maps)])
    # One field more than expected, so that an unknown one is named rather than counted.
    limit = len(plain) + 1 + FORM_ITEMS * (len(lists) + len(maps))
    async with request.form(max_files=1, max_fields=limit) as form:
        values: dict[str, Any] = {}
        for key, value in form.multi_items():
            name, bracket, rest = key.partition("[")
            listed = name in lists and rest == "]"
            keyed = name in maps and len(rest) > 1 and rest.endswith("]") and "[" not in rest
            if key == file_field:
                continue
            if not (listed or keyed or (not bracket and name in plain)):
                raise InvalidRequest(f"{key}: unknown field; expected {expected}")
            if not isinstance(value, str):
                raise InvalidRequest(f"{key}: must be a plain form field")
            if listed:
                values.setdefault(name, []).append(value)
            elif keyed:
                parts = values.setdefault(name, {})
                if not isinstance(parts, dict):
                    raise InvalidRequest(f"{name}: send one value or {name}[...] fields, not both")
                parts[rest[:-1]] = value
            elif value != "":
                if isinstance(values.get(name), dict):
                    raise InvalidRequest(f"{name}: send one value or {name}[...] fields, not both")
                values[name] = FORM_BOOLEANS.get(value.lower(), value) if name in flags else value
        upload = form.get(file_field)
        if not isinstance(upload, UploadFile):
            raise InvalidRequest(
                f"{file_field}: a multipart file field `{file_field}` with the audio is required"
            )
        return values, await upload.read()


def validate_model(model: type[ModelT], data: Any) -> ModelT:
    """``data`` as ``model`` (strict types), or 400 naming the offending fields."""
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise InvalidRequest(describe_validation_errors(errors)) from exc


def load_json(raw: str | bytes, what: str = "the request body") -> Any:
    """``raw`` parsed as JSON (no NaN or Infinity, nesting limited), or 400 saying what is wrong."""
    try:
        # pydantic-core's parser guards its own recursion: no RecursionError however deep the input.
        value = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise InvalidRequest(f"{what} is not valid JSON ({exc})") from exc
    _check_nesting(value, what)
    return value


def unpack_map(raw: bytes, what: str = "the request body") -> dict[str, Any]:
    """``raw`` as a MessagePack map with string keys, or 400 saying what is wrong with ``what``."""
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except (msgpack.exceptions.UnpackException, ValueError, TypeError) as exc:
        # Truncated or trailing data, reserved bytes, invalid UTF-8 in a string, non-string keys,
        # nesting beyond the unpacker's own stack.
        raise InvalidRequest(f"{what} is not valid MessagePack ({type(exc).__name__})") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a MessagePack map")
    _check_nesting(value, what)
    return value


def _check_nesting(value: Any, what: str) -> None:
    # Iterative, so the check itself cannot run out of stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_NESTING:
                    raise InvalidRequest(f"{what} nests arrays and objects deeper than {MAX_NESTING} levels")
                stack.append((child, depth + 1))
