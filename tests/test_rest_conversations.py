"""The Conversations REST API end to end, on the memory store and on the Redis store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.rest import recording_file_path
from tests.rest_rig import Rig, rig_fixture
from tests.rest_support import SEED_ANALYSIS, SEED_COSTS, STORE_KINDS


@pytest.fixture(params=STORE_KINDS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(request, tmp_path, request.param)


def ids(rig: Rig, query: str, who: str = "admin") -> list[str]:
    response = rig.get("/api/v1/conversations" + query, who)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["data"]]


def test_list_envelope_and_defaults(rig: Rig) -> None:
    body = rig.get("/api/v1/conversations").json()
    a, b, c = rig.convs["a"], rig.convs["b"], rig.convs["c"]
    assert {k: body[k] for k in ("page", "pageSize", "total", "totalPages")} == {"page": 1, "pageSize": 20, "total": 3, "totalPages": 1}
    assert [x["id"] for x in body["data"]] == [c, b, a]  # startedAt, newest first
    assert body["data"][2]["caller"] == {"phoneNumber": "+14155550199", "country": "US"}
    assert ids(rig, "", "other") == [rig.convs["other"]]


def test_every_filter(rig: Rig) -> None:
    a, b, c = rig.convs["a"], rig.convs["b"], rig.convs["c"]
    cases = {
        "?agentId=agt_01": [c, a], "?agentId=agt_none": [], "?channel=phone": [a], "?channel=webrtc": [b],
        "?status=completed": [a], "?status=in_progress": [c], "?status=failed": [b], "?direction=outbound": [b],
        "?direction=inbound": [c, a], "?outcome=escalated": [b], "?outcome=resolved": [], "?tags=billing": [c, a],
        "?tags=billing,vip": [c], "?tags=vip&tags=billing": [c], "?tags=billing,%20vip,": [c], "?tags=nope": [],
        "?minDuration=0": [c, b, a], "?minDuration=100": [c, a], "?minDuration=101": [a], "?minDuration=227": [a],
        "?minDuration=228": [],
        "?dateFrom=2025-06-17": [c, b], "?dateTo=2025-06-17": [b, a], "?dateFrom=2025-06-17&dateTo=2025-06-17": [b],
        "?dateFrom=2025-06-16T14:22:00Z&dateTo=2025-06-16T14:22:00Z": [a],
        "?dateFrom=2025-06-16T14:22:00.001Z": [c, b], "?dateTo=2025-06-16T14:21:59Z": [],
        "?dateFrom=2025-06-16T16:22:00%2B02:00&dateTo=2025-06-16T16:22:00+02:00": [a],
        "?dateFrom=2025-06-16T14:22:00": [c, b, a],
        "?agentId=agt_01&channel=phone&dateFrom=2025-06-01&dateTo=2025-06-30&status=completed": [a],
        "?status=completed&channel=sms": [], "?agentId=": [c, b, a], "?unknownParam=1": [c, b, a],
    }
    for query, want in cases.items():
        assert ids(rig, query) == want, query


def test_pagination_and_sorting(rig: Rig) -> None:
    a, b, c = rig.convs["a"], rig.convs["b"], rig.convs["c"]
    page = rig.get("/api/v1/conversations?pageSize=2&page=2").json()
    assert [x["id"] for x in page["data"]] == [a] and page["totalPages"] == 2 and page["total"] == 3 and page["pageSize"] == 2
    beyond = rig.get("/api/v1/conversations?pageSize=2&page=3").json()
    assert beyond["data"] == [] and beyond["total"] == 3 and beyond["page"] == 3
    assert rig.get("/api/v1/conversations?pageSize=100").json()["pageSize"] == 100
    assert ids(rig, "?pageSize=1&page=1") == [c]
    assert ids(rig, "?sortOrder=asc") == [a, b, c]
    assert ids(rig, "?sortBy=durationSeconds") == [a, c, b]  # 227 s, 100 s (live), 30 s
    assert ids(rig, "?sortBy=durationSeconds&sortOrder=asc") == [b, c, a]
    assert ids(rig, "?sortBy=endedAt") == [c, b, a]  # in progress counts as not ended yet: last
    assert ids(rig, "?sortBy=endedAt&sortOrder=asc&pageSize=2") == [a, b]
    assert ids(rig, "?sortBy=startedAt&sortOrder=desc&tags=billing") == [c, a]
    empty = rig.get("/api/v1/conversations?agentId=nobody").json()
    assert empty == {"data": [], "page": 1, "pageSize": 20, "total": 0, "totalPages": 0}


def test_get_and_sub_resources(rig: Rig) -> None:
    a, c = rig.convs["a"], rig.convs["c"]
    conv = rig.get(f"/api/v1/conversations/{a}").json()
    assert conv["id"] == a and conv["durationSeconds"] == 227 and conv["status"] == "completed" and conv["tags"] == ["billing"]
    assert conv["cost"]["totalUsd"] == 0.094 and conv["analysis"]["intent"] == "billing_inquiry"
    assert conv["recording"]["available"] is True and conv["recording"]["format"] == "mp3"
    messages = rig.get(f"/api/v1/conversations/{a}/messages").json()
    assert messages["conversationId"] == a
    assert messages["messages"][0] == {"id": "msg_01", "role": "agent", "content": "Hello! How can I help?",
                                       "timestamp": "2025-06-16T14:22:00Z", "durationMs": 3200}
    transcript = rig.get(f"/api/v1/conversations/{a}/transcript").json()
    assert transcript["language"] == "en-US" and transcript["durationSeconds"] == 227
    assert [(t["id"], t["speaker"]) for t in transcript["turns"]] == [("turn_01", "agent"), ("turn_02", "user")]
    assert rig.get(f"/api/v1/conversations/{a}/costs").json() == {"conversationId": a, **SEED_COSTS}
    assert rig.get(f"/api/v1/conversations/{a}/analysis").json() == {"conversationId": a, **SEED_ANALYSIS}
    no_analysis = rig.get(f"/api/v1/conversations/{c}/analysis")
    assert no_analysis.status_code == 404 and "analysis" in no_analysis.json()["detail"]
    assert rig.get(f"/api/v1/conversations/{c}/costs").json()["total"] == 0.0
    live = rig.get(f"/api/v1/conversations/{c}").json()
    assert live["durationSeconds"] == 100 and live["endedAt"] is None
    assert rig.request("HEAD", f"/api/v1/conversations/{a}").status_code == 200


def test_another_tenants_id_is_not_found_everywhere(rig: Rig) -> None:
    other = rig.convs["other"]
    for suffix in ("", "/messages", "/costs", "/transcript", "/analysis", "/recording"):
        response = rig.get(f"/api/v1/conversations/{other}{suffix}")
        assert response.status_code == 404, suffix
        assert response.json()["type"] == "https://docs.voisnap.ai/errors/not-found"
    assert rig.request("POST", f"/api/v1/conversations/{other}/tags", json={"tags": ["x"]}).status_code == 404
    assert rig.request("PUT", f"/api/v1/conversations/{other}/outcome", json={"outcome": "x"}).status_code == 404
    assert rig.request("DELETE", f"/api/v1/conversations/{other}").status_code == 404
    assert rig.get(f"/api/v1/conversations/{other}", "other").status_code == 200  # untouched
    for unknown in ("conv_00000000000000000000000000", "conv_nope", "not-an-id", "conv_%2e%2e"):
        assert rig.get(f"/api/v1/conversations/{unknown}").status_code == 404, unknown


def test_tags_merge_dedupe_and_validate(rig: Rig) -> None:
    a = rig.convs["a"]
    response = rig.request("POST", f"/api/v1/conversations/{a}/tags", json={"tags": ["vip-customer", "billing", " vip-customer "]})
    assert response.status_code == 200 and response.json()["tags"] == ["billing", "vip-customer"]
    assert response.json()["id"] == a and set(response.json()) >= {"status", "cost", "recording"}
    assert rig.get(f"/api/v1/conversations/{a}").json()["tags"] == ["billing", "vip-customer"]
    assert ids(rig, "?tags=vip-customer") == [a]
    for bad in ({"tags": []}, {"tags": "billing"}, {"tags": [1]}, {"tags": ["a,b"]}, {"tags": ["has space"]}, {"tags": [""]},
                {"tags": ["x" * 65]}, {}, {"tags": ["ok"], "extra": 1}, {"tags": [f"t{i}" for i in range(51)]}):
        response = rig.request("POST", f"/api/v1/conversations/{a}/tags", json=bad)
        assert response.status_code == 400, bad
    many = [f"t{i}" for i in range(48)]
    assert rig.request("POST", f"/api/v1/conversations/{a}/tags", json={"tags": many}).status_code == 200  # 50 in all
    assert rig.request("POST", f"/api/v1/conversations/{a}/tags", json={"tags": ["one-more"]}).status_code == 400
    assert rig.request("POST", f"/api/v1/conversations/{a}/tags", json={"tags": ["t1"]}).status_code == 200  # nothing new


def test_outcome(rig: Rig) -> None:
    b = rig.convs["b"]
    response = rig.request("PUT", f"/api/v1/conversations/{b}/outcome",
                           json={"outcome": "resolved", "notes": "Billing question answered, customer satisfied."})
    assert response.status_code == 200 and response.json()["outcome"] == "resolved"
    assert ids(rig, "?outcome=resolved") == [b]
    assert rig.request("PUT", f"/api/v1/conversations/{b}/outcome", json={"outcome": "callback", "notes": None}).status_code == 200
    assert rig.get(f"/api/v1/conversations/{b}").json()["outcome"] == "callback"
    for bad in ({}, {"notes": "x"}, {"outcome": 3}, {"outcome": ""}, {"outcome": "ok", "notes": 5}, {"outcome": "ok", "x": 1},
                {"outcome": "ok", "notes": "n" * 4001}, {"outcome": None}):
        assert rig.request("PUT", f"/api/v1/conversations/{b}/outcome", json=bad).status_code == 400, bad


def test_delete_is_irreversible(rig: Rig) -> None:
    a = rig.convs["a"]
    path = recording_file_path(rig.services.data_dir, "ten_a", a)
    assert path.exists()
    assert rig.request("DELETE", f"/api/v1/conversations/{a}", "reader").status_code == 403
    response = rig.request("DELETE", f"/api/v1/conversations/{a}")
    assert response.status_code == 204 and response.content == b""
    assert rig.deleted == [("ten_a", a)]
    assert not path.exists()
    for suffix in ("", "/messages", "/costs", "/transcript", "/analysis", "/recording"):
        assert rig.get(f"/api/v1/conversations/{a}{suffix}").status_code == 404, suffix
    assert a not in ids(rig, "") and ids(rig, "?tags=billing") == [rig.convs["c"]]
    assert rig.request("DELETE", f"/api/v1/conversations/{a}").status_code == 404
    assert rig.deleted == [("ten_a", a)]
    assert rig.run(rig.store.get_transcript, "ten_a", a) is None
