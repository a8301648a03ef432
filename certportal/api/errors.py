"""One error format for every API error.

    {"code": "invalid", "message": "...",
     "errors": [{"field": "csr", "code": "bad_csr", "message": "..."}]}

``code`` is machine-readable; ``errors`` lists field errors (field null when general).
A service refusal (``certportal.refusals.Refused``) raised by any API view is mapped here,
once: a conflict is 409, a caller who may not is 403, anything else a 400 field error on
the refusal's field, each carrying the refusal's code. A service's Django ValidationError
is a 400 with the same messages the portal's forms show, per field.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from certportal import faults
from certportal.refusals import Refused


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    service = faults.outage(exc)
    if service is not None:
        set_rollback()
        faults.note(context["request"], exc, service)
        response = Response(faults.api_body(), status=status.HTTP_503_SERVICE_UNAVAILABLE)
        faults.finish(response)
        return response
    if isinstance(exc, Refused):
        exc = refusal_error(exc)
    elif isinstance(exc, DjangoValidationError):
        exc = invalid(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = error_body(exc)
    return response


def refusal_error(refused: Refused) -> exceptions.APIException:
    """A service refusal as the API exception that renders it."""
    if refused.conflict:
        return Conflict(refused.message, code=refused.code)
    if refused.forbidden:
        return exceptions.PermissionDenied(refused.message, code=refused.code)
    return field_error(refused.field, refused.code, refused.message)


def invalid(error: DjangoValidationError) -> exceptions.ValidationError:
    """A service's ValidationError (the messages the portal's forms show) as field errors."""
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(
            {
                field if field != "__all__" else "non_field_errors": [str(m) for m in messages]
                for field, messages in error.message_dict.items()
            }
        )
    return exceptions.ValidationError(error.messages)


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    errors = list(_flatten(exc.get_full_details(), None))
    if isinstance(exc, exceptions.ValidationError):
        code, message = "invalid", "The request is invalid."
        if errors and all(e["field"] is None for e in errors):
            code, message = errors[0]["code"], errors[0]["message"]
    else:
        code = errors[0]["code"] if errors else exc.default_code
        message = errors[0]["message"] if errors else str(exc.default_detail)
        errors = []
    return {"code": code, "message": message, "errors": errors}


def _flatten(details: Any, field: str | None) -> Any:
    if isinstance(details, dict) and "message" in details and "code" in details:
        yield {"field": field, "code": str(details["code"]), "message": str(details["message"])}
    elif isinstance(details, dict):
        for key, value in details.items():
            name = None if key == "non_field_errors" else key
            yield from _flatten(value, f"{field}.{name}" if field and name else name or field)
    elif isinstance(details, list):
        for index, value in enumerate(details):
            nested = isinstance(value, dict) and "message" not in value
            yield from _flatten(value, f"{field}[{index}]" if nested and field else field)


def field_error(field: str | None, code: str, message: str) -> exceptions.ValidationError:
    """A ValidationError that renders as one field error with a machine-readable code."""
    if field is None:
        return exceptions.ValidationError(message, code=code)
    return exceptions.ValidationError({field: [exceptions.ErrorDetail(message, code=code)]})


def json_object(data: Any) -> dict[str, Any]:
    """A request body that must be a JSON object, as a plain dict (views merge it with the
    name from the URL or with the current settings)."""
    if not isinstance(data, dict):
        raise field_error(None, "invalid", "Send a JSON object.")
    return dict(data.items())


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"
