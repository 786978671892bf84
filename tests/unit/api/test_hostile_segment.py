"""The Segment endpoints never answer 5xx to input: hostile Segment calls and batches get 200
(published or dead-lettered, one result per call) or 400/413, never an exception."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient

from streams.api import create_app
from streams.settings import Settings
from tests.hostile import _add_field, _drop_field, _set_field, _textual
from tests.unit.api.test_segment_api import KEY, KEYS, Recorder, basic

AT = "2025-03-04T09:15:00Z"
CALLS: list[dict[str, Any]] = [
    {"type": "page", "messageId": "p", "anonymousId": "a", "timestamp": AT,
     "properties": {"url": "https://t.example/", "title": "T"},
     "context": {"page": {"referrer": "r"}, "campaign": {"source": "g", "name": "n"}}},
    {"type": "identify", "messageId": "i", "anonymousId": "a", "userId": "u", "timestamp": AT,
     "traits": {"email": "a@b.example", "title": "CMO", "company": {"name": "C",
                                                                   "employee_count": 9}}},
    {"type": "track", "messageId": "t", "userId": "u", "timestamp": AT,
     "event": "Form Submitted", "properties": {"form_id": "f", "company_size": 3},
     "context": {"traits": {"email": "a@b.example"}}},
    {"type": "track", "messageId": "x", "userId": "u", "event": "Thing Happened"},
]  # fmt: skip
MUTATIONS = [_set_field, _set_field, _drop_field, _add_field]


def hostile_bodies(count: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    bodies = []
    for index in range(count):
        call = copy.deepcopy(CALLS[index % len(CALLS)])
        for _ in range(rng.randint(1, 3)):
            call = rng.choice(MUTATIONS)(call, rng)
        batched = rng.random() < 0.4
        raw = json.dumps({"batch": [call, CALLS[0]]} if batched else call).encode()
        if rng.random() < 0.3:
            raw = _textual(raw, rng)
        path = "batch" if batched else str(CALLS[index % len(CALLS)]["type"])
        bodies.append((path, raw))
    return bodies


def test_hostile_segment_calls_never_get_a_5xx() -> None:
    recorder = Recorder()
    app = create_app(Settings(), publisher_factory=lambda _s: recorder, api_keys=KEYS)
    headers = {**basic(KEY), "Content-Type": "application/json"}
    statuses: Counter[int] = Counter()
    with TestClient(app, raise_server_exceptions=False) as http:
        for path, raw in hostile_bodies(1500, seed=11):
            response = http.post(f"/v1/segment/{path}", content=raw, headers=headers)
            statuses[response.status_code] += 1
            assert response.status_code in {200, 400, 403, 413}, (path, raw[:200], response.text)
            if response.status_code == 200:
                body = response.json()
                assert body["success"] is True
                assert body["published"] + body["dead_lettered"] == len(body["results"])
    assert statuses[200] > 500 and statuses[400] > 50, statuses
    assert recorder.published and recorder.raw
