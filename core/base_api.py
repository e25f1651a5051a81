"""The base class of every API view: JSON only, the error envelope, and Idempotency-Key on unsafe methods."""

from collections.abc import Sequence
from typing import Any, Protocol, cast

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import APIException, MethodNotAllowed
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from core.errors import InvalidRequest
from core.idempotency import (
    UNSAFE_METHODS,
    IdempotentReplay,
    idempotency_begin,
    idempotency_finish,
)
from core.models import IdempotencyKey

_DECLARED: dict[tuple[str, str], frozenset[str]] = {}
# Accept headers for which DRF's negotiation picks the JSON renderer as plain `application/json`.
PLAIN_JSON_ACCEPTS = frozenset({"*/*", "application/json"})


def declared_query_parameters(view: APIView, method: str) -> frozenset[str]:
    """The query parameters an operation declares in its OpenAPI schema (`@extend_schema(parameters=…)`: each
    `OpenApiParameter` in the query, or the fields of a serializer given there), read through the same schema
    inspector drf-spectacular uses, once per view and method. The schema is the one list: a parameter it does
    not name is refused, so a typo (`?custmer=`) cannot silently widen a list."""
    key = (f"{type(view).__module__}.{type(view).__qualname__}", method)
    if (known := _DECLARED.get(key)) is None:
        known = _DECLARED[key] = _declared(view, method)
    return known


def deep_object_key(name: str) -> tuple[str, str] | None:
    """A deepObject query parameter's (parameter, key) from its name `parameter[key]`, or None for another name."""
    opened = name.find("[")
    if opened <= 0 or not name.endswith("]"):
        return None
    return name[:opened], name[opened + 1 : -1]


def _query_known(name: str, declared: frozenset[str]) -> bool:
    """Whether a query parameter's name is one the operation declares: itself, or `name[key]` of a deepObject
    parameter `name` (declared as `name[]`)."""
    if name in declared:
        return True
    deep = deep_object_key(name)
    return deep is not None and f"{deep[0]}[]" in declared


def _declared(view: APIView, method: str) -> frozenset[str]:
    handler = getattr(view, method.lower(), None)
    inspector_class = getattr(handler, "kwargs", {}).get("schema")
    if inspector_class is None:
        return frozenset()
    inspector = inspector_class()
    inspector.view = view
    inspector.method = method.upper()
    names: set[str] = set()
    for parameter in inspector.get_override_parameters():
        if isinstance(parameter, OpenApiParameter):
            if parameter.location == OpenApiParameter.QUERY:
                names.add(parameter.name)
                if (
                    parameter.style == "deepObject"
                ):  # sent as `name[key]=…`: known by `name[]` (`_query_known`)
                    names.add(f"{parameter.name}[]")
        elif isinstance(parameter, serializers.Serializer) or (
            isinstance(parameter, type) and issubclass(parameter, serializers.Serializer)
        ):
            instance = parameter() if isinstance(parameter, type) else parameter
            names.update(instance.fields)
    return frozenset(names)


class Caller(Protocol):
    """What the authentication layer puts in `request.auth` (projects.authentication.Principal)."""

    @property
    def idempotency_owner(self) -> str: ...


class BaseApi(APIView):
    """Thin views: parse → service or selector → render. Subclasses declare permission_classes when not tenant."""

    # URL kwarg → model of the object it names, for objects that belong to the caller's project. The
    # cross-tenant sweep test reads this to prove that another project's key gets 404 on every such route.
    # Each URL kwarg naming a tenant's object, and its model (None: a part of the object named before it, such as
    # an invoice's line, found within that object).
    tenant_lookup: dict[str, type | None] = {}

    _idempotency_record: IdempotencyKey | None = None

    # Cache values the rate limiter read in its round trip, for the keys `read_ahead_keys` named (absent → None).
    read_ahead: dict[str, Any] | None = None

    _body_error: APIException | None = None

    def read_ahead_keys(self, request: Request) -> Sequence[str]:
        """Cache keys this request will read first, so the rate limiter fetches them in its own round trip (a
        hot view's one cache read then costs nothing more). Called after authentication, during throttling;
        must not raise. To look at the body here, use `body`."""
        return ()

    def body(self, request: Request) -> Any:
        """`request.data`, safe to ask for before the view runs: DRF remembers a body it could not parse as an
        empty one, so the parse error (400, 415) is kept and raised again each time the body is asked for."""
        if self._body_error is None:
            try:
                return request.data
            except APIException as exc:
                self._body_error = exc
        raise self._body_error

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        """DRF's choice, made at once in the case nearly every request is: the API renders JSON only, so a request
        that names no format (no `?format=`, no format suffix) and accepts anything or JSON gets the JSON renderer
        as `application/json`, exactly what DRF's negotiation would pick after parsing the header. Anything else
        (another type, media type parameters, a 406) goes through DRF's negotiation unchanged."""
        if (
            request.META.get("HTTP_ACCEPT", "*/*") in PLAIN_JSON_ACCEPTS
            and self.format_kwarg is None
            and api_settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            renderers = self.get_renderers()
            if len(renderers) == 1 and type(renderers[0]) is JSONRenderer:
                return renderers[0], JSONRenderer.media_type
        negotiated: tuple[Any, str] = super().perform_content_negotiation(request, force)
        return negotiated

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttling
        self.refuse_undeclared_method(request)
        if request.query_params:
            declared = declared_query_parameters(self, request.method or "GET")
            for name in request.query_params:
                if not _query_known(name, declared):
                    known = ", ".join(sorted(declared)) or "none"
                    raise InvalidRequest(
                        f"Unknown query parameter {name!r} (this operation takes: {known}).",
                        code="unknown_parameter",
                        param=name,
                    )
        key = request.headers.get("Idempotency-Key")
        if request.method in UNSAFE_METHODS and key is not None:
            self._idempotency_record = idempotency_begin(
                owner=cast(Caller, request.auth).idempotency_owner, key=key, request=request._request
            )

    def refuse_undeclared_method(self, request: Request) -> None:
        """405 (with `Allow`, set on every answer by DRF) for a method the view has no handler for, before
        anything looks at the request as if it were one: DRF only finds out in `dispatch`, after `initial`, so
        until then the query parameters would be checked against an operation that does not exist (400) and an
        `Idempotency-Key` taken for it (409 `idempotency_key_reused` on the key's next use, its 405 stored)."""
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise MethodNotAllowed(request.method or "")

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, IdempotentReplay):
            return exc.stored.to_response()
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        record, self._idempotency_record = self._idempotency_record, None
        if record is not None:
            if isinstance(response, Response):
                response.render()
            idempotency_finish(
                record=record,
                status=response.status_code,
                body=bytes(getattr(response, "content", b"")),
                content_type=response.get("Content-Type", "application/json"),
            )
        return response
