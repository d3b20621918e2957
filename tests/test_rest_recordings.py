"""Signed recording URLs: the link, the download with Range, and every refused signature."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from hub.rest.problems import Problem
from hub.rest.recordings import parse_range, sign
from tests.rest_rig import MP3, RECORDING_SECRET, Rig, rig_fixture


@pytest.fixture
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(request, tmp_path)


def link(rig: Rig) -> tuple[str, str, str]:
    response = rig.get(f"/api/v1/conversations/{rig.convs['a']}/recording")
    assert response.status_code == 200, response.text
    body = response.json()
    parts = urlsplit(body["url"])
    query = parse_qs(parts.query)
    assert body["format"] == "mp3" and body["durationSeconds"] == 227
    return parts.path, query["expires"][0], query["sig"][0]


def test_signed_link_and_download(rig: Rig) -> None:
    a = rig.convs["a"]
    body = rig.get(f"/api/v1/conversations/{a}/recording").json()
    assert body["url"].startswith(f"http://127.0.0.1:8000/recordings/{a}.mp3?expires=")
    expires = int(parse_qs(urlsplit(body["url"]).query)["expires"][0])
    assert expires == int(rig.clock().timestamp()) + 3600 and body["expiresAt"] == "2025-06-18T15:23:40Z"
    path, exp, sig = link(rig)
    assert sig == sign(RECORDING_SECRET, path, int(exp))
    response = rig.get(f"{path}?expires={exp}&sig={sig}", None)
    assert response.status_code == 200 and response.content == MP3
    assert response.headers["content-type"] == "audio/mpeg" and response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(MP3))
    head = rig.request("HEAD", f"{path}?expires={exp}&sig={sig}", None)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(MP3))
    rig.clock.advance(3600)
    assert rig.get(f"{path}?expires={exp}&sig={sig}", None).status_code == 200  # valid through its last second


def test_range_requests(rig: Rig) -> None:
    path, exp, sig = link(rig)
    url = f"{path}?expires={exp}&sig={sig}"
    size = len(MP3)
    for header, start, end in (("bytes=0-99", 0, 99), ("bytes=100-", 100, size - 1), ("bytes=-10", size - 10, size - 1),
                               ("bytes=10000-999999", 10000, size - 1), ("bytes=0-0", 0, 0), ("bytes=-99999", 0, size - 1)):
        response = rig.get(url, None, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == MP3[start:end + 1], header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert response.headers["content-length"] == str(end - start + 1)
    for ignored in ("bytes=5-1", "items=0-5", "bytes=0-1,5-6", "bytes=-"):
        response = rig.get(url, None, headers={"Range": ignored})
        assert response.status_code == 200 and response.content == MP3, ignored
    for unsatisfiable in (f"bytes={size}-", "bytes=-0"):
        response = rig.get(url, None, headers={"Range": unsatisfiable})
        assert response.status_code == 416 and response.headers["content-range"] == f"bytes */{size}", unsatisfiable
        assert response.headers["content-type"] == "application/problem+json"


def test_tampered_expired_and_foreign_signatures_are_403(rig: Rig) -> None:
    path, exp, sig = link(rig)
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    for query in (f"expires={exp}&sig={flipped}", f"expires={int(exp) + 3600}&sig={sig}", f"expires={exp}", f"sig={sig}", "",
                  f"expires=soon&sig={sig}", f"expires={exp}&sig={sig.upper()}", f"expires={exp}&sig={sig[:-2]}"):
        response = rig.get(f"{path}?{query}", None)
        assert response.status_code == 403, query
        assert response.headers["content-type"] == "application/problem+json"
    other = rig.convs["b"]
    assert rig.get(f"/recordings/{other}.mp3?expires={exp}&sig={sig}", None).status_code == 403  # another file's signature
    rig.clock.advance(3601)
    expired = rig.get(f"{path}?expires={exp}&sig={sig}", None)
    assert expired.status_code == 403 and "expired" in expired.json()["detail"]


def test_missing_recordings_and_deleted_files(rig: Rig) -> None:
    b, other = rig.convs["b"], rig.convs["other"]
    missing = rig.get(f"/api/v1/conversations/{b}/recording")
    assert missing.status_code == 404 and "recording" in missing.json()["detail"]
    assert rig.get(f"/api/v1/conversations/{other}/recording", "other").status_code == 404
    exp = int(rig.clock().timestamp()) + 60
    unknown = f"/recordings/conv_nope.mp3?expires={exp}&sig={sign(RECORDING_SECRET, '/recordings/conv_nope.mp3', exp)}"
    assert rig.get(unknown, None).status_code == 404
    rig.run(rig.store.set_recording, "ten_a", b, path="/etc/passwd", duration_seconds=1)  # outside data_dir: never served
    assert rig.get(f"/api/v1/conversations/{b}/recording").status_code == 404
    escaped = f"/recordings/{b}.mp3?expires={exp}&sig={sign(RECORDING_SECRET, f'/recordings/{b}.mp3', exp)}"
    assert rig.get(escaped, None).status_code == 404
    path, exp_a, sig = link(rig)
    assert rig.request("DELETE", f"/api/v1/conversations/{rig.convs['a']}").status_code == 204
    assert rig.get(f"{path}?expires={exp_a}&sig={sig}", None).status_code == 404


def test_public_base_url(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    for rig in rig_fixture(request, tmp_path, public_base_url="https://hub.example.com/"):
        url = rig.get(f"/api/v1/conversations/{rig.convs['a']}/recording").json()["url"]
        assert url.startswith(f"https://hub.example.com/recordings/{rig.convs['a']}.mp3?expires=")


def test_parse_range_unit() -> None:
    assert parse_range(None, 10) is None and parse_range("bytes=2-4", 10) == (2, 4)
    with pytest.raises(Problem):
        parse_range("bytes=0-", 0)
