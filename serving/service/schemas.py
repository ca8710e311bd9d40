"""Request and response models of the service, and parsing that names the offending field.

Every client error is a ``RequestError(status, field, message)``; the app answers it as
``{"detail": "<field>: <message>", "field": "<field>"}`` with 422 (malformed or invalid input) or 413
(too many candidates). List items are named like ``candidates[3]``.
"""
from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails

from serving.service.limits import MAX_CANDIDATES, MAX_ID_LENGTH, MAX_RELATED_K

#: Requests may carry times from these years (UTC); others are rejected rather than scored.
TIME_YEARS = (1970, 2100)
TIME_EXAMPLE = "2019-11-14T08:55:22Z"
_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")


class RequestError(Exception):
    """A client error: HTTP ``status``, the ``field`` at fault and a one-line ``message``."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status, self.field, self.message = status, field, message

    def payload(self) -> dict[str, str]:
        return {"detail": f"{self.field}: {self.message}", "field": self.field}


def _utc_time(value: Any) -> datetime | None:
    """ISO 8601 text to an aware UTC datetime (no offset: UTC); None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        # pydantic reports a ValueError (not a TypeError) raised in a validator as a validation error
        raise ValueError(  # noqa: TRY004
            f"must be an ISO 8601 string like {TIME_EXAMPLE!r} or null, got {type(value).__name__}")
    shown = value if len(value) <= 40 else value[:37] + "..."
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"unparseable time {shown!r}; expected ISO 8601 like {TIME_EXAMPLE!r}") from None
    if not TIME_YEARS[0] <= parsed.year <= TIME_YEARS[1]:
        raise ValueError(f"time {shown!r} is outside the years {TIME_YEARS[0]}-{TIME_YEARS[1]}")
    return parsed


Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^\S+$")]


class RankRequest(BaseModel):
    """``POST /v1/rank``: score ``candidates`` for a user who clicked ``history`` (oldest first) at ``time``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    user_id: Id
    history: list[Id] = Field(default_factory=list)
    candidates: list[Id]
    time: Annotated[datetime | None, BeforeValidator(_utc_time)] = None


class ModelRef(BaseModel):
    name: str
    version: str


class RankResponse(BaseModel):
    """Scores in candidate order; ``ranking``: candidates by score, best first (ties keep candidate order);
    ``unknown``: candidates missing from the model's catalogue (scored with out-of-vocabulary features)."""

    scores: list[float]
    ranking: list[str]
    unknown: list[str]
    model: ModelRef


class RelatedItem(BaseModel):
    news_id: str
    score: float
    click: float
    quality: float


class RankerRef(ModelRef):
    lam: float = Field(alias="lambda")


class RelatedResponse(BaseModel):
    items: list[RelatedItem]
    model: RankerRef


class ErrorResponse(BaseModel):
    detail: str
    field: str


_FRIENDLY = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field; expected user_id, history, candidates, time",
    "string_pattern_mismatch": "must be an id without whitespace",
    "string_too_short": "must be a non-empty id",
    "string_too_long": f"ids have at most {MAX_ID_LENGTH} characters",
}


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _error_message(error: ErrorDetails) -> str:
    if error["type"] in _FRIENDLY:
        return _FRIENDLY[error["type"]]
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_rank_request(body: bytes) -> RankRequest:
    """The validated request of a ``/v1/rank`` body, or ``RequestError`` naming the first bad field.

    413 for more than ``MAX_CANDIDATES`` candidates (checked before anything else about them); 422 for
    malformed JSON, a body that is not an object, missing, unknown, null or mistyped fields, an empty or
    duplicated candidate list and an unparseable time.
    """
    if not body.strip():
        raise RequestError(422, "body", "empty body; expected a JSON object with user_id, history, candidates, time")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise RequestError(422, "body", f"malformed JSON: {err}") from None
    if not isinstance(data, dict):
        raise RequestError(422, "body", f"expected a JSON object, got {type(data).__name__}")
    candidates = data.get("candidates")
    if isinstance(candidates, list) and len(candidates) > MAX_CANDIDATES:
        raise RequestError(413, "candidates", f"{len(candidates)} candidates; at most {MAX_CANDIDATES} per request")
    try:
        request = RankRequest.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        raise RequestError(422, _field_name(first["loc"]), _error_message(first)) from None
    if not request.candidates:
        raise RequestError(422, "candidates", "must list at least one news id")
    if len(set(request.candidates)) != len(request.candidates):
        first_at: dict[str, int] = {}
        for i, news_id in enumerate(request.candidates):
            if news_id in first_at:
                raise RequestError(422, f"candidates[{i}]",
                                   f"duplicate id {news_id!r} (also at candidates[{first_at[news_id]}])")
            first_at[news_id] = i
    return request


def parse_related_query(k_text: str | None, lam_text: str | None) -> tuple[int, float | None]:
    """``(k, lambda)`` of ``/v1/related``'s query string: k in 1..MAX_RELATED_K (default 5), lambda in
    [0, 1] or None (the ranker's default); ``RequestError`` (422) naming ``k`` or ``lambda`` otherwise."""
    k = 5
    if k_text is not None:
        if not _INTEGER.fullmatch(k_text):
            raise RequestError(422, "k", f"must be an integer, got {k_text[:40]!r}")
        k = int(k_text)
        if not 1 <= k <= MAX_RELATED_K:
            raise RequestError(422, "k", f"must be between 1 and {MAX_RELATED_K}, got {k}")
    lam = None
    if lam_text is not None:
        try:
            lam = float(lam_text)
        except ValueError:
            raise RequestError(422, "lambda", f"must be a number, got {lam_text[:40]!r}") from None
        if not (math.isfinite(lam) and 0.0 <= lam <= 1.0):
            raise RequestError(422, "lambda", f"must be between 0 and 1, got {lam_text[:40]!r}")
    return k, lam
