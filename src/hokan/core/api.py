"""One way to build a REST API: Django Ninja with API-key auth, a rate limit and JSON errors.

Every app's API is made by ``build_api`` and mounted under ``/api/`` (or, for the estimate
API of design document 004, at the paths the document names)::

    from hokan.core.api import build_api
    from hokan.core.api_keys import ApiKeyAuth

    api = build_api(title="hokan 営業リストAPI", version="1.0.0", urls_namespace="leads-api",
                    auth=ApiKeyAuth(), validation_status=422)

    @api.get("/leads", response={200: LeadPage}, summary="営業リストの一覧")
    def list_leads(request, ...): ...

Every error answers JSON ``{"detail": "<Japanese message>", ...}`` and never a trace:

    400  ``InputError`` (adds ``"field"``), malformed JSON, a request Django refuses
         (``SuspiciousOperation``), and — with ``validation_status=400`` — schema validation
    401  ``ApiKeyMissing`` / Ninja's ``AuthenticationError`` (with ``WWW-Authenticate``)
    403  ``ApiKeyRejected``
    404  ``Http404`` and unknown paths; 405 a method the path does not offer (with ``Allow``)
    409  ``AlreadyPaid`` (the work is paid or in flight)
    413  a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``
    422  schema validation with ``validation_status=422``: ``"errors": [{"field", "message"}]``
    429  ``RateLimited`` / Ninja's ``Throttled`` (with ``Retry-After``, whole seconds) and
         ``BudgetExceeded`` (the service's own spending limit: try again later)
    503  ``LLMTransientError`` (a provider is unavailable; ``Retry-After`` when it said one)
    500  anything else (logged with its trace; the client reads only a Japanese sentence)

Apps add their own handlers with ``@api.exception_handler(TheirError)`` as usual.

Outside Ninja's operations — unknown paths, 405 from Ninja's path views, Django's own 400 /
500 pages, and a gunicorn worker timeout (``SystemExit`` raised inside the request) —
``JsonErrorsMiddleware`` rewrites any non-JSON error answer for a path under ``/api/`` or
of a mounted Ninja API as the same JSON.

OpenAPI: every operation documents 400 and 500; 401 / 403 when its auth can answer them
(``error_statuses`` of the auth class, default 401 and 403); 429 when it is rate limited
(a throttle, or an auth class whose ``error_statuses`` holds 429); 422 with
``validation_status=422`` for operations with parameters. An auth object whose
``key_required`` is false (``SharedSecretAuth`` with its setting empty) is documented
as optional (``security: [{}, ...]``) and without 403.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hmac
import logging
import math
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import pydantic

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from ninja import NinjaAPI, Schema, renderers
from ninja.constants import NOT_SET
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.security import APIKeyHeader
from ninja.throttling import BaseThrottle

from hokan.core.api_keys import ApiKeyMissing, ApiKeyRejected
from hokan.core.errors import AlreadyPaid, BudgetExceeded, InputError, LLMTransientError, RateLimited

log = logging.getLogger(__name__)

__all__ = ["ErrorOut", "HokanAPI", "JsonErrorsMiddleware", "SharedSecretAuth", "ValidationErrorOut", "build_api",
           "error_body", "schema_of"]

API_PATH_PREFIX = "/api/"

# The Japanese sentence of each status the API layer answers by itself.
MESSAGES: dict[int, str] = {
    400: "リクエストを読み取れません（JSON の形式と内容を確認してください）",
    401: "APIキーがありません（X-API-Key ヘッダーで送ってください）",
    403: "APIキーが正しくないか、無効になっています",
    404: "見つかりません",
    405: "このURLでは使えないメソッドです",
    409: "処理中または処理済みのため受け付けられません",
    413: "リクエストが大きすぎます",
    422: "入力内容に誤りがあります",
    429: "リクエストが多すぎます。しばらく待ってから再度お試しください。",
    500: "内部エラーが発生しました。時間をおいて再度お試しください。",
    503: "外部サービスに接続できません。時間をおいて再度お試しください。",
}
DOC_DESCRIPTIONS: dict[int, str] = {
    400: "リクエストの形式・値が正しくない（JSON の構文、項目の型や値）",
    401: "APIキー（X-API-Key）がない",
    403: "APIキーが正しくない・無効",
    422: "入力内容の検証エラー（項目ごとの理由は errors）",
    429: "レート制限または利用上限に達した（Retry-After 秒待って再送）",
    500: "内部エラー（詳細はサーバーのログ）",
}

# Pydantic's error types in Japanese (the rest: 値の形式が正しくありません).
PYDANTIC_MESSAGES = {
    "extra_forbidden": "不明な項目です",
    "missing": "必須項目です",
    "literal_error": "指定できない値です",
    "enum": "指定できない値です",
    "greater_than_equal": "小さすぎます",
    "greater_than": "小さすぎます",
    "less_than_equal": "大きすぎます",
    "less_than": "大きすぎます",
    "string_too_long": "長すぎます",
    "string_too_short": "短すぎます",
    "uuid_parsing": "UUID ではありません",
    "uuid_type": "UUID ではありません",
    "int_parsing": "整数ではありません",
    "int_type": "整数ではありません",
    "int_from_float": "整数ではありません",
    "bool_parsing": "true / false ではありません",
    "bool_type": "true / false ではありません",
    "string_type": "文字列ではありません",
    "dict_type": "オブジェクト（{...}）ではありません",
    "model_type": "オブジェクト（{...}）ではありません",
    "model_attributes_type": "オブジェクト（{...}）ではありません",
    "list_type": "リストではありません",
    "json_invalid": "JSON として読めません",
}
# Parts of a pydantic location that name Ninja's parameter containers, not a field.
_CONTAINER_LOCS = frozenset({"body", "payload", "path", "query", "header", "cookie", "form", "file", "filters"})


# A dataclass field's type → the type of its JSON form (what the app's serialiser writes).
_JSON_TYPES: dict[Any, Any] = {decimal.Decimal: str, dt.datetime: str, dt.date: str}


def schema_of(
    cls: type, name: str, *, exclude: Iterable[str] = (), extra: Mapping[str, Any] | None = None,
) -> type[Schema]:
    """The Ninja response schema of a result dataclass, built from its fields, so that the API
    and the dataclass cannot drift apart (one field list, not two).

    cls: a dataclass; name: the schema's name in the OpenAPI document; exclude: fields the API
    does not return; extra: further fields, name → type or (type, default) — derived values
    the serialiser adds (e.g. a property). Decimal (money), datetime and date fields are
    typed ``str``: the apps send them as exact decimal text and ISO 8601. A dataclass
    default becomes the schema's default.

    Raises:
        TypeError: ``cls`` is not a dataclass.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    skip = set(exclude)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = _JSON_TYPES.get(hints[f.name], hints[f.name])
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (kind, f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (kind, pydantic.Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (kind, ...)
    for key, spec in (extra or {}).items():
        fields[key] = spec if isinstance(spec, tuple) else (spec, ...)
    model: type[Schema] = pydantic.create_model(name, __base__=Schema, __module__=cls.__module__, **fields)
    return model


class ErrorOut(Schema):
    """Every error answer: ``detail`` (Japanese); ``field`` names the bad field when one is."""

    detail: str
    field: str | None = None


class FieldErrorOut(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    """A validation error: ``detail`` joins the messages; ``errors`` one per field."""

    detail: str
    errors: list[FieldErrorOut]


class JSONRenderer(renderers.JSONRenderer):
    """Japanese messages as UTF-8 text rather than \\uXXXX escapes."""

    json_dumps_params = {"ensure_ascii": False}


def error_body(status: int, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    """``{"detail": detail or the status's Japanese sentence, **extra}``."""
    return {"detail": detail or MESSAGES.get(status) or HTTPStatus(status).phrase, **extra}


def _retry_after(seconds: float | None) -> str | None:
    """Retry-After as whole seconds, at least 1 (RFC 9110 delta-seconds)."""
    if seconds is None:
        return None
    return str(max(1, math.ceil(seconds)))


class SharedSecretAuth(APIKeyHeader):
    """``X-API-Key`` must equal the setting ``setting`` (compared in constant time); when the
    setting is empty, every request passes (design document 004 §10: 「未設定時スキップ」).

    A missing or wrong key raises ``ApiKeyRejected`` (403 for both, as document 004 §11.3
    says). OpenAPI marks the key as required only while the setting is set.
    """

    param_name = "X-API-Key"
    error_statuses = (403,)

    def __init__(self, setting: str = "API_KEY", message: str = "APIキーが正しくありません") -> None:
        self.setting = setting
        self.message = message
        super().__init__()

    @property
    def expected(self) -> str:
        return str(getattr(settings, self.setting, "") or "")

    @property
    def key_required(self) -> bool:
        return bool(self.expected)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        expected = self.expected
        if not expected:
            return True
        if key and hmac.compare_digest(key.encode(), expected.encode()):
            return True
        raise ApiKeyRejected(self.message)


class _Schema(OpenAPISchema):
    """Ninja's OpenAPI schema plus the error answers every operation can give (module docstring)."""

    api: HokanAPI

    def operation_details(self, operation: Operation) -> dict[str, Any]:
        result = super().operation_details(operation)
        responses = result["responses"]
        for status in self.api.error_statuses_of(operation):
            if status in responses or str(status) in responses:
                continue
            model = ValidationErrorOut if status == 422 else ErrorOut
            # Ninja types this for its parameter models; any pydantic model works (as for responses).
            schema = self._create_schema_from_model(model, mode="serialization")[0]  # type: ignore[type-var]
            responses[status] = {"description": DOC_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
                                 "content": {self.api.renderer.media_type: {"schema": schema}}}
        return result

    def operation_security(self, operation: Operation) -> list[dict[str, Any]] | None:
        security = super().operation_security(operation)
        if security and any(getattr(a, "key_required", True) is False for a in operation.auth_callbacks):
            return [{}, *security]  # the key may be sent, but is not needed
        return security


class HokanAPI(NinjaAPI):
    """A NinjaAPI with hokan's JSON errors and documented error answers (module docstring)."""

    def __init__(self, *, validation_status: int = 400, field_labels: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        if validation_status not in (400, 422):
            raise ValueError("validation_status must be 400 or 422")
        self.validation_status = validation_status
        self.field_labels = dict(field_labels or {})
        kwargs.setdefault("renderer", JSONRenderer())
        super().__init__(**kwargs)

    # --- OpenAPI ------------------------------------------------------------------------------
    def get_openapi_schema(self, *, path_prefix: str | None = None,
                           path_params: dict[str, Any] | None = None) -> Any:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        return _Schema(self, path_prefix)

    def error_statuses_of(self, operation: Operation) -> list[int]:
        """The error statuses ``operation`` can answer by this layer (documented in OpenAPI)."""
        statuses = {400, 500}
        for auth in operation.auth_callbacks or ():
            declared = getattr(auth, "error_statuses", (401, 403))
            if getattr(auth, "key_required", True) is False:
                declared = tuple(s for s in declared if s not in (401, 403))
            statuses.update(declared)
        if operation.throttle_objects:
            statuses.add(429)
        if self.validation_status == 422 and operation.models:
            statuses.add(422)
        return sorted(statuses)

    # --- errors -------------------------------------------------------------------------------
    def error_response(self, request: HttpRequest, status: int, detail: str | None = None,
                       *, headers: Mapping[str, str | None] | None = None, **extra: Any) -> HttpResponse:
        """A JSON error answer (``error_body``) with optional headers (None values are left out)."""
        response = self.create_response(request, error_body(status, detail, **extra), status=status)
        for name, value in (headers or {}).items():
            if value is not None:
                response[name] = value
        return response

    def field_label(self, field: str) -> str:
        return self.field_labels.get(field, field)

    def validation_response(self, request: HttpRequest, errors: Sequence[dict[str, Any]]) -> HttpResponse:
        """``errors``: pydantic-style dicts (``loc``, ``type``) → the API's validation answer."""
        items = []
        for error in errors:
            loc = [str(p) for p in error.get("loc", ()) if str(p) not in _CONTAINER_LOCS]
            field = ".".join(loc)
            label = self.field_label(field)
            reason = PYDANTIC_MESSAGES.get(str(error.get("type", "")), "値の形式が正しくありません")
            items.append({"field": field, "message": f"{label}: {reason}" if label else reason})
        if not items:
            items = [{"field": "", "message": "リクエストの内容が正しくありません"}]
        detail = "入力内容に誤りがあります: " + " / ".join(item["message"] for item in items)
        return self.error_response(request, self.validation_status, detail, errors=items)

    def set_default_exception_handlers(self) -> None:
        handlers: list[tuple[type[Exception], Callable[[HttpRequest, Any], HttpResponse]]] = [
            (InputError, lambda r, e: self.error_response(r, 400, e.reason, field=e.field or None)),
            (ValidationError, lambda r, e: self.validation_response(r, e.errors)),
            (RequestDataTooBig, lambda r, e: self.error_response(r, 413)),
            (SuspiciousOperation, lambda r, e: self.error_response(r, 400)),
            (ApiKeyMissing, self._missing_key),
            (AuthenticationError, lambda r, e: self._missing_key(r, ApiKeyMissing(MESSAGES[401]))),
            (ApiKeyRejected, lambda r, e: self.error_response(r, 403, str(e) or None)),
            (RateLimited, lambda r, e: self.error_response(r, 429, str(e) or None,
                                                           headers={"Retry-After": _retry_after(e.retry_after_s)})),
            (Throttled, lambda r, e: self.error_response(r, 429, headers={"Retry-After": _retry_after(e.wait)})),
            (BudgetExceeded, lambda r, e: self.error_response(
                r, 429, "利用上限に達したため、現在は受け付けられません。時間をおいて再度お試しください。")),
            (AlreadyPaid, lambda r, e: self.error_response(r, 409)),
            (LLMTransientError, lambda r, e: self.error_response(
                r, 503, headers={"Retry-After": _retry_after(e.retry_after_s)})),
            (Http404, lambda r, e: self.error_response(r, 404)),
            (HttpError, self._http_error),
            (Exception, self._internal_error),
        ]
        for exc_class, handler in handlers:
            self.add_exception_handler(exc_class, handler)

    def _missing_key(self, request: HttpRequest, exc: ApiKeyMissing) -> HttpResponse:
        return self.error_response(request, 401, str(exc) or None,
                                   headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})

    def _http_error(self, request: HttpRequest, exc: HttpError) -> HttpResponse:
        status = exc.status_code
        if status == 422:  # Ninja's own "invalid" answers follow the API's validation status
            status = self.validation_status
        return self.error_response(request, status)

    def _internal_error(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        log.exception("%s: unhandled error on %s %s", self.title, request.method, request.path)
        return self.error_response(request, 500)


def build_api(*, title: str, version: str, urls_namespace: str, description: str = "",
              auth: Any = NOT_SET, rate_limit: BaseThrottle | list[BaseThrottle] | None = None,
              validation_status: int = 400, field_labels: Mapping[str, str] | None = None,
              docs_url: str = "/docs", openapi_url: str = "/openapi.json") -> HokanAPI:
    """A ``HokanAPI`` (see the module docstring).

    auth: a Ninja auth object (``hokan.core.api_keys.ApiKeyAuth``: keys in the admin, 401 / 403,
        per-key rate limit; ``SharedSecretAuth``: one key from a setting, 403).
    rate_limit: Ninja throttle(s) applied after auth (e.g. the estimate's per-IP limit); an
        operation opts out with ``throttle=[]`` (health checks).
    validation_status: 400 (document 004 §11.3) or 422 (the leads API) for schema validation.
    field_labels: {field name: Japanese label} used in validation messages.
    docs_url / openapi_url: relative to where the API is mounted.
    """
    return HokanAPI(title=title, version=version, description=description, urls_namespace=urls_namespace,
                    auth=auth, throttle=NOT_SET if rate_limit is None else rate_limit, docs_url=docs_url,
                    openapi_url=openapi_url, validation_status=validation_status, field_labels=field_labels)


# --- outside Ninja's operations ---------------------------------------------------------------
def _is_api_request(request: HttpRequest) -> bool:
    if request.path.startswith(API_PATH_PREFIX):
        return True
    match = getattr(request, "resolver_match", None)
    return match is not None and "ninja" in (match.app_names or [])


def _is_json(response: HttpResponseBase) -> bool:
    return "json" in str(response.get("Content-Type", "")).lower()


class JsonErrorsMiddleware:
    """JSON for every error answer of an API path (``/api/…`` or any mounted Ninja API).

    - an error response (status ≥ 400) that is not JSON — Django's 404 page, Ninja's plain-text
      405, Django's 400 / 500 pages — becomes ``{"detail": <Japanese>}`` with the same status
      and its ``Allow`` / ``Retry-After`` / ``WWW-Authenticate`` headers;
    - ``SystemExit`` raised inside the request (gunicorn's worker timeout and SIGINT/SIGQUIT
      handlers call ``sys.exit`` in the worker) is answered 500 JSON, logged; gunicorn has
      already marked the worker to stop, so it exits right after this answer.

    Place it right after ``CorsMiddleware`` so that every other layer is inside it.
    """

    KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            response = self.get_response(request)
        except SystemExit:
            if not _is_api_request(request):
                raise
            log.error("Request %s %s interrupted (worker timeout or shutdown)", request.method, request.path)
            return JsonResponse(error_body(500), status=500, json_dumps_params={"ensure_ascii": False})
        if response.status_code < 400 or _is_json(response) or not _is_api_request(request):
            return response
        status = response.status_code
        json_response = JsonResponse(error_body(status), status=status, json_dumps_params={"ensure_ascii": False})
        for name in self.KEPT_HEADERS:
            if name in response:
                json_response[name] = response[name]
        return json_response
