"""Segment wire -> (write key, valid events, dead letters), per capture.md "Segment-style".

Mapping: track -> `event`; page -> `$pageview`; screen -> `$screen`; identify -> `$identify`
(traits as `$set`); alias -> `$create_alias` (previousId as `alias`); group -> `$groupidentify`
(`$group_type` "segment_group", `$group_key` groupId, traits as `$group_set`).
distinct_id = userId, else anonymousId. uuid = messageId, uuid5-derived when not a UUID.

Identity (docs/capture.md "Segment identity"): a call with both a userId and a different
anonymousId ties them, as Segment's identity model does for every call carrying both: the event
gets `$segment_anonymous_id` (which the person model links like `$identify`), and an identify
also gets PostHog's own `$anon_distinct_id`. `context.traits` (where rudder-sdk-python puts
identify traits; Segment allows them on any call) become `$set`, under top-level `traits`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from eventlens.capture.fields import (
    check_identity_ids,
    check_structure,
    derived_uuid,
    distinct_id_of,
    event_name_of,
    event_time_us,
    storable_payload,
    time_us,
    within_depth,
)
from eventlens.capture.model import CapturedEvent, DeadLetter
from eventlens.capture.posthog import ParsedBody, TokenCollector
from eventlens.errors import AuthenticationError, InvalidEvent, InvalidInput
from eventlens.persons.model import LINKED_ID

SEGMENT_TYPES = ("track", "page", "screen", "identify", "alias", "group")
_NAMED = {"page": "$pageview", "screen": "$screen", "identify": "$identify"}
_NAMED |= {"alias": "$create_alias", "group": "$groupidentify"}
GROUP_TYPE = "segment_group"


def basic_auth_user(header: str | None) -> str | None:
    """The user name of an `Authorization: Basic ...` header (Segment's write key), else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise AuthenticationError(
            "Authorization: Basic credentials are not valid base64", field="Authorization"
        ) from exc
    return decoded.partition(":")[0] or None


def _obj(msg: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = msg.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"{where}.{key} must be a JSON object", field=f"{where}.{key}")
    return dict(value)


def _context_props(context: dict[str, Any]) -> dict[str, Any]:
    """The few context fields PostHog's own Segment integration promotes to properties."""
    out: dict[str, Any] = {}
    page = context.get("page")
    if isinstance(page, dict) and isinstance(page.get("url"), str):
        out["$current_url"] = page["url"]
    if isinstance(context.get("ip"), str):
        out["$ip"] = context["ip"]
    library = context.get("library")
    if isinstance(library, dict) and isinstance(library.get("name"), str):
        out["$lib"] = library["name"]
    return out


def parse_message(
    msg: Any,
    *,
    kind: str | None,
    where: str,
    now_us: int,
    sent_at_us: int | None,
    max_message: int | None = None,
    surrogates: bool = False,
    structure: bool = True,
) -> CapturedEvent:
    """One Segment message -> `CapturedEvent`. `kind` is forced by single-type endpoints;
    `surrogates` and `structure` as in `posthog.parse_event`."""
    if structure or surrogates:
        check_structure(msg, where, surrogates=surrogates)
    if not isinstance(msg, dict):
        raise InvalidEvent(f"{where} must be a JSON object, not {type(msg).__name__}", field=where)
    if max_message is not None:
        size = len(orjson.dumps(msg))
        if size > max_message:
            raise InvalidEvent(
                f"{where} is {size} bytes, over Segment's {max_message} byte message limit",
                field=where,
            )
    mtype = kind or msg.get("type")
    if mtype not in SEGMENT_TYPES:
        raise InvalidEvent(
            f"{where}.type must be one of {', '.join(SEGMENT_TYPES)}, not {mtype!r}",
            field=f"{where}.type",
        )
    anonymous = msg.get("anonymousId")
    if isinstance(anonymous, str) and not anonymous.strip():
        anonymous = None  # SDKs send "" for "no anonymous id"; it must not link anything
    if msg.get("userId") is not None:
        did = distinct_id_of(msg["userId"], f"{where}.userId")
        anon = None if anonymous is None else distinct_id_of(anonymous, f"{where}.anonymousId")
    else:
        did = distinct_id_of(anonymous, f"{where}.userId/anonymousId")
        anon = None
    context = _obj(msg, "context", where)
    props = _context_props(context)
    context_traits = _obj(context, "traits", f"{where}.context")
    if mtype == "track":
        name = event_name_of(msg.get("event"), f"{where}.event")
        props |= _obj(msg, "properties", where)
    else:
        name = _NAMED[mtype]
        props |= _obj(msg, "properties", where)
        if mtype in ("page", "screen"):
            for key in ("name", "category"):
                if msg.get(key) is not None:
                    props[key] = msg[key]
        elif mtype == "identify":
            props["$set"] = context_traits | _obj(msg, "traits", where)
        elif mtype == "alias":
            if msg.get("previousId") is None:
                raise InvalidEvent(f"{where}.previousId is missing", field=f"{where}.previousId")
            props["alias"] = distinct_id_of(msg["previousId"], f"{where}.previousId")
        else:  # group
            if msg.get("groupId") is None:
                raise InvalidEvent(f"{where}.groupId is missing", field=f"{where}.groupId")
            props["$group_type"] = GROUP_TYPE
            props["$group_key"] = distinct_id_of(msg["groupId"], f"{where}.groupId")
            props["$group_set"] = _obj(msg, "traits", where)
    if context_traits and mtype != "identify":
        own = props.get("$set")
        props["$set"] = context_traits | (own if isinstance(own, dict) else {})
    if anon is not None and anon != did:
        props[LINKED_ID] = anon
        if mtype == "identify":
            props["$anon_distinct_id"] = anon
    check_identity_ids(name, props, f"{where}.properties")
    msg_sent = msg.get("sentAt")
    if msg_sent is not None:
        sent_at_us = time_us(msg_sent, f"{where}.sentAt")
    timestamp = msg.get("timestamp")
    if timestamp is None:
        timestamp = msg.get("originalTimestamp")
    ts = event_time_us(
        now_us=now_us,
        timestamp=timestamp,
        sent_at_us=sent_at_us,
        offset_ms=None,
        ignore_sent_at=False,
        field=where,
        properties=props,
    )
    return CapturedEvent(
        uuid=derived_uuid(msg.get("messageId")),
        event=name,
        distinct_id=did,
        timestamp=ts,
        properties=props,
    )


def parse_segment(
    payload: Any,
    *,
    kind: str | None,
    now_us: int,
    auth_header: str | None = None,
    max_message: int | None = None,
    surrogates: bool = False,
) -> ParsedBody:
    """Parse a decoded Segment body: `kind` None means `/v1/batch` (`{"batch": [...]}`), else
    the single message type of the endpoint. The write key comes from HTTP Basic auth or
    `writeKey` in the body (they must agree).

    Raises `InvalidInput` (shape, empty batch, bad sentAt) and `AuthenticationError`.
    """
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"body must be a JSON object, not {type(payload).__name__}", field="body"
        )
    tokens = TokenCollector()
    tokens.add(basic_auth_user(auth_header), "Authorization")
    tokens.add(payload.get("writeKey"), "writeKey")
    if kind is None:
        items = payload.get("batch")
        if not isinstance(items, list):
            raise InvalidInput("batch must be a JSON array of messages", field="batch")
        if not items:
            raise InvalidInput("batch is empty: nothing to capture", field="batch")
        prefix = "batch"
    else:
        items = [payload]
        prefix = kind
    sent_at = payload.get("sentAt")
    sent_at_us = None if sent_at is None else time_us(sent_at, "sentAt", error=InvalidInput)
    batch_context = payload.get("context") if kind is None else None

    out = ParsedBody(token=None)
    # A message without its own context gets the batch's, one level down.
    structure = not (within_depth(items) and within_depth([[batch_context]]))
    for i, msg in enumerate(items):
        where = prefix if kind is not None else f"batch[{i}]"
        if isinstance(msg, dict):
            tokens.add(msg.get("writeKey"), f"{where}.writeKey")
            if isinstance(batch_context, dict) and "context" not in msg:
                msg = {**msg, "context": batch_context}
        try:
            out.events.append(
                parse_message(
                    msg,
                    kind=kind,
                    where=where,
                    now_us=now_us,
                    sent_at_us=sent_at_us,
                    max_message=max_message,
                    surrogates=surrogates,
                    structure=structure,
                )
            )
        except InvalidEvent as exc:
            payload = storable_payload(items[i])
            out.dead.append(DeadLetter(index=i, reason=exc.message, payload=payload))
    out.token = tokens.token
    return out
