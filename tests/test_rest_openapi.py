"""/openapi.json: OpenAPI 3.1 describing every route, with schemas that every live answer validates against."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hub.rest import rest_endpoints
from tests.rest_rig import OPENAPI, Rig, rig_fixture


@pytest.fixture
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(request, tmp_path)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_document_served_and_consistent(rig: Rig) -> None:
    served = rig.get("/openapi.json", None)
    assert served.status_code == 200 and served.json() == OPENAPI
    assert OPENAPI["openapi"] == "3.1.0" and OPENAPI["info"]["title"]
    routes = {path: {m.lower() for m in methods} for path, methods in rest_endpoints().items()}
    documented = {path: set(ops) for path, ops in OPENAPI["paths"].items()}
    assert routes == documented
    op_ids = [op["operationId"] for ops in OPENAPI["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids))
    for name, schema in OPENAPI["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert name[0].isupper()
    for ref in set(refs(OPENAPI)):
        section, kind, name = ref.removeprefix("#/").split("/")
        assert name in OPENAPI[section][kind], ref
    for path, ops in OPENAPI["paths"].items():
        for method, op in ops.items():
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"\{(\w+)\}", path)), (path, method)
            assert any(code.startswith("2") for code in op["responses"]), (path, method)
            if op.get("security"):
                assert {"401", "403", "429"} <= set(op["responses"]), (path, method)


def test_every_operation_answers_as_documented(rig: Rig) -> None:
    """One successful call of each operation; the rig validates each answer against its schema."""
    a, b = rig.convs["a"], rig.convs["b"]
    calls = [("GET", "/api/v1/conversations?pageSize=2", {}), ("GET", f"/api/v1/conversations/{a}", {}),
             ("GET", f"/api/v1/conversations/{a}/messages", {}), ("GET", f"/api/v1/conversations/{a}/costs", {}),
             ("GET", f"/api/v1/conversations/{a}/transcript", {}), ("GET", f"/api/v1/conversations/{a}/analysis", {}),
             ("POST", f"/api/v1/conversations/{a}/tags", {"json": {"tags": ["x"]}}),
             ("PUT", f"/api/v1/conversations/{a}/outcome", {"json": {"outcome": "resolved", "notes": "n"}}),
             ("POST", "/api/v1/auth/token", {"json": {"scopes": ["conversations:read"]}}), ("POST", "/api/v1/auth/login", {}),
             ("GET", "/api/v1/api-keys", {}), ("GET", "/openapi.json", {})]
    for method, path, kwargs in calls:
        assert rig.request(method, path, **kwargs).status_code == 200, path
    created = rig.request("POST", "/api/v1/api-keys", json={"name": "n", "scopes": ["monitor:read"]})
    assert created.status_code == 201
    key_id = created.json()["id"]
    assert rig.get(f"/api/v1/api-keys/{key_id}").status_code == 200
    assert rig.request("DELETE", f"/api/v1/api-keys/{key_id}").status_code == 204
    url = rig.get(f"/api/v1/conversations/{a}/recording").json()["url"].removeprefix("http://127.0.0.1:8000")
    assert rig.get(url, None).status_code == 200
    assert rig.get(url, None, headers={"Range": "bytes=0-9"}).status_code == 206
    assert rig.request("DELETE", f"/api/v1/conversations/{b}").status_code == 204


def test_schemas_are_strict(rig: Rig) -> None:
    """The Conversation schema refuses a renamed or missing field, so validation means something."""
    validator = jsonschema.Draft202012Validator(OPENAPI["components"]["schemas"]["Conversation"])
    conv = rig.get(f"/api/v1/conversations/{rig.convs['a']}").json()
    assert validator.is_valid(conv)
    assert not validator.is_valid({**conv, "duration": 1})
    assert not validator.is_valid({k: v for k, v in conv.items() if k != "outcome"})
    assert not validator.is_valid({**conv, "startedAt": "yesterday"})
