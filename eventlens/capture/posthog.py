"""PostHog wire -> (token, valid events, dead letters), per capture.md "PostHog-style endpoints".

Body shapes, tried in order: (1) a JSON array of events (posthog-js); (2) an object with a
`batch` array and `api_key`|`token`, `sent_at` (posthog-python); (3) one event object.
A body that is none of these is `InvalidInput` (400). One bad event never fails the request:
it becomes a `DeadLetter` with its reason and index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from eventlens.capture.fields import (
    check_identity_ids,
    check_structure,
    check_token,
    distinct_id_of,
    event_name_of,
    event_time_us,
    storable_payload,
    time_us,
    uuid_of,
    within_depth,
)
from eventlens.capture.model import CapturedEvent, DeadLetter
from eventlens.errors import AuthenticationError, InvalidEvent, InvalidInput

_EVENT_TOKEN_KEYS = ("token", "$token", "api_key")


@dataclass(slots=True)
class ParsedBody:
    """What a capture request carried. `token` is None when no token was sent at all."""

    token: str | None
    events: list[CapturedEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.events) + len(self.dead)


class TokenCollector:
    """Collects every token of a request; they must all agree (else 401)."""

    def __init__(self) -> None:
        self.token: str | None = None

    def add(self, value: Any, where: str) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not value:
            raise AuthenticationError(f"{where} must be a non-empty string", field=where)
        check_token(value, where)
        if self.token is None:
            self.token = value
        elif value != self.token:
            raise AuthenticationError(
                f"{where} differs from the request's other token: one request, one project",
                field=where,
            )


def _event_tokens(item: dict[str, Any], tokens: TokenCollector, where: str) -> None:
    for key in _EVENT_TOKEN_KEYS:
        tokens.add(item.get(key), f"{where}.{key}")
    props = item.get("properties")
    if isinstance(props, dict):
        tokens.add(props.get("token"), f"{where}.properties.token")


def _merge_set(props: dict[str, Any], item: dict[str, Any], key: str, where: str) -> None:
    top = item.get(key)
    if top is None:
        return
    if not isinstance(top, dict):
        raise InvalidEvent(f"{where}.{key} must be a JSON object", field=f"{where}.{key}")
    inner = props.get(key)
    props[key] = {**inner, **top} if isinstance(inner, dict) else dict(top)


def parse_event(
    item: Any,
    *,
    where: str,
    now_us: int,
    sent_at_us: int | None,
    max_event: int | None = None,
    surrogates: bool = False,
    structure: bool = True,
) -> CapturedEvent:
    """One wire event -> `CapturedEvent`; `InvalidEvent` names the bad field under `where`.

    `structure`: check the nesting depth (False when the caller checked the whole batch).
    `surrogates`: the body came from the fallback parser (see `decode.parse_json_body`), so
    strings are checked for lone surrogates too.
    """
    if structure or surrogates:
        check_structure(item, where, surrogates=surrogates)
    if not isinstance(item, dict):
        raise InvalidEvent(f"{where} must be a JSON object, not {type(item).__name__}", field=where)
    if max_event is not None:
        size = len(orjson.dumps(item))
        if size > max_event:
            raise InvalidEvent(
                f"{where} is {size} bytes, over the {max_event} byte per-event limit", field=where
            )
    name = event_name_of(item.get("event"), f"{where}.event")
    props = item.get("properties")
    if props is None:
        props = {}
    elif not isinstance(props, dict):
        raise InvalidEvent(f"{where}.properties must be a JSON object", field=f"{where}.properties")
    else:
        props = dict(props)
    if item.get("distinct_id") is not None:
        did = distinct_id_of(item["distinct_id"], f"{where}.distinct_id")
    elif item.get("$distinct_id") is not None:
        did = distinct_id_of(item["$distinct_id"], f"{where}.$distinct_id")
    else:
        did = distinct_id_of(props.get("distinct_id"), f"{where}.distinct_id")
    uuid = uuid_of(item.get("uuid"), f"{where}.uuid")
    check_identity_ids(name, props, f"{where}.properties")
    _merge_set(props, item, "$set", where)
    _merge_set(props, item, "$set_once", where)
    ignore = item.get("$ignore_sent_at") is True or props.get("$ignore_sent_at") is True
    ts = event_time_us(
        now_us=now_us,
        timestamp=item.get("timestamp"),
        sent_at_us=sent_at_us,
        offset_ms=item.get("offset"),
        ignore_sent_at=ignore,
        field=where,
        properties=props,
    )
    return CapturedEvent(uuid=uuid, event=name, distinct_id=did, timestamp=ts, properties=props)


def parse_posthog(
    payload: Any,
    *,
    now_us: int,
    query_sent_at_ms: str | None = None,
    max_event: int | None = None,
    surrogates: bool = False,
) -> ParsedBody:
    """Parse a decoded PostHog body (see module doc).

    `now_us` is the server receive time; `query_sent_at_ms` is posthog-js's `_` parameter
    (epoch ms), used when the body has no `sent_at`. `max_event` (bytes) is checked per event
    only when given (callers pass it when the body is larger than it). `surrogates`: see
    `parse_event`.
    Raises `InvalidInput` (not a known shape, empty batch, bad `sent_at`) and
    `AuthenticationError` (tokens disagree or are not strings).
    """
    tokens = TokenCollector()
    sent_at: Any = None
    if isinstance(payload, list):
        items: list[Any] = payload
        prefix = "batch"
    elif isinstance(payload, dict) and "batch" in payload:
        items = payload["batch"]
        if not isinstance(items, list):
            raise InvalidInput("batch must be a JSON array of events", field="batch")
        prefix = "batch"
        tokens.add(payload.get("api_key"), "api_key")
        tokens.add(payload.get("token"), "token")
        sent_at = payload.get("sent_at")
    elif isinstance(payload, dict):
        items = [payload]
        prefix = "event"
        sent_at = payload.get("sent_at")
    else:
        raise InvalidInput(
            "body must be a JSON array of events, an object with a 'batch' array, or one event"
            f" object; got {type(payload).__name__}",
            field="body",
        )
    if not items:
        raise InvalidInput("batch is empty: nothing to capture", field="batch")

    sent_at_us: int | None = None
    if sent_at is not None:
        sent_at_us = time_us(sent_at, "sent_at", error=InvalidInput)
    elif query_sent_at_ms:
        try:
            sent_at_us = int(query_sent_at_ms) * 1000
        except ValueError as exc:
            raise InvalidInput(
                f"query parameter _ must be epoch milliseconds, not {query_sent_at_ms[:32]!r}",
                field="_",
            ) from exc

    single = prefix == "event"
    for i, item in enumerate(items):
        if isinstance(item, dict):
            _event_tokens(item, tokens, prefix if single else f"batch[{i}]")

    out = ParsedBody(token=tokens.token)
    structure = not within_depth(items)
    for i, item in enumerate(items):
        where = prefix if single else f"batch[{i}]"
        try:
            out.events.append(
                parse_event(
                    item,
                    where=where,
                    now_us=now_us,
                    sent_at_us=sent_at_us,
                    max_event=max_event,
                    surrogates=surrogates,
                    structure=structure,
                )
            )
        except InvalidEvent as exc:
            payload = storable_payload(item)
            out.dead.append(DeadLetter(index=i, reason=exc.message, payload=payload))
    return out
