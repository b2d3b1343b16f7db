"""Re-validation of dead letters for `eventlens deadletter replay`.

A dead letter is replayed through the same parser that rejected it, so it passes only if the
payload is now valid (the rule was fixed, or the operator edited the stored payload).
Replay must be idempotent (a crash between appending and marking replays again), so an event
that had no uuid gets one derived from (project, dead-letter id), and the dead letter's receive
time stands in for "now" in the time rules. A row `eventlens import` rejected is read with the
import's rules (capture/import_rows.py), so a fixed row means what its file meant.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventlens.capture.decode import parse_json_body
from eventlens.capture.fields import RAW_JSON
from eventlens.capture.import_rows import IMPORT_MARKER, to_capture_shape
from eventlens.capture.model import CapturedEvent
from eventlens.capture.posthog import parse_event
from eventlens.capture.segment import SEGMENT_TYPES, parse_message
from eventlens.errors import InvalidEvent, InvalidInput

_SEGMENT_ID_KEYS = ("userId", "anonymousId", "messageId")


def is_segment_message(payload: Any) -> bool:
    """Segment messages carry a Segment `type` and Segment id keys; PostHog events do not."""
    return (
        isinstance(payload, dict)
        and payload.get("type") in SEGMENT_TYPES
        and any(k in payload for k in _SEGMENT_ID_KEYS)
        and "distinct_id" not in payload
    )


def replay_uuid(project_id: int, dead_letter_id: int) -> str:
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"eventlens-deadletter:{project_id}:{dead_letter_id}")
    )


def revalidate(
    payload: Any,
    *,
    project_id: int,
    dead_letter_id: int,
    received_at_us: int,
    max_event: int,
) -> CapturedEvent:
    """The event a dead letter's payload now makes; `InvalidEvent` if it is still invalid."""
    where = f"deadletter[{dead_letter_id}]"
    surrogates = False
    if (
        isinstance(payload, dict)
        and set(payload) == {RAW_JSON}
        and isinstance(payload[RAW_JSON], str)
    ):
        # Kept as text because it held lone surrogates: read it the way capture did.
        try:
            body = parse_json_body(payload[RAW_JSON].encode())
        except InvalidInput as exc:
            raise InvalidEvent(f"{where}.{RAW_JSON}: {exc.message}", field=where) from exc
        payload, surrogates = body.value, body.surrogates
    if isinstance(payload, dict) and IMPORT_MARKER in payload:
        # A row `eventlens import` rejected: read with the import's rules (import_rows.py).
        try:
            payload = to_capture_shape(payload)
        except InvalidEvent as exc:
            raise InvalidEvent(f"{where}.{exc.message}", field=where) from exc
    stable = replay_uuid(project_id, dead_letter_id)
    if is_segment_message(payload):
        if payload.get("messageId") is None:
            payload = {**payload, "messageId": stable}
        return parse_message(
            payload,
            kind=None,
            where=where,
            now_us=received_at_us,
            sent_at_us=None,
            max_message=max_event,
            surrogates=surrogates,
        )
    if isinstance(payload, dict) and payload.get("uuid") is None:
        payload = {**payload, "uuid": stable}
    return parse_event(
        payload,
        where=where,
        now_us=received_at_us,
        sent_at_us=None,
        max_event=max_event,
        surrogates=surrogates,
    )
