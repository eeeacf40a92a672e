"""Integers the database can hold: every integer an operation takes is bounded in its schema.

An id past 64 bits used to reach the database and come back as a 500. The OpenAPI document
must say the bounds (so clients and fuzzers know them), and the app must answer such a value
with a 4xx naming the parameter, on every operation. Both tests walk the app's own routes,
so an endpoint added without bounds fails them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import INT32_MAX, INT64_MAX
from app.main import create_app
from tests.helpers import make_station, staff

TOO_BIG = 2**64


def _integer_schemas(
    schema: dict[str, Any], where: str, spec: dict[str, Any]
) -> list[tuple[str, dict]]:
    """Every integer (sub)schema inside `schema`, with a path naming where it sits."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _integer_schemas(spec["components"]["schemas"][name], f"{where}<{name}>", spec)
    found = []
    if schema.get("type") == "integer":
        found.append((where, schema))
    for key in ("anyOf", "oneOf", "allOf"):
        for n, sub in enumerate(schema.get(key, [])):
            found += _integer_schemas(sub, f"{where}.{key}[{n}]", spec)
    if "items" in schema:
        found += _integer_schemas(schema["items"], f"{where}[]", spec)
    for name, sub in schema.get("properties", {}).items():
        found += _integer_schemas(sub, f"{where}.{name}", spec)
    return found


def _bounded(schema: dict[str, Any]) -> bool:
    low = "minimum" in schema or "exclusiveMinimum" in schema
    return low and schema.get("maximum", INT64_MAX + 1) <= INT64_MAX


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_integer_in_the_openapi_document_has_database_bounds() -> None:
    spec = create_app().openapi()
    unbounded = []
    for method, path, op in _operations(spec):
        for param in op.get("parameters", []):
            for where, schema in _integer_schemas(param["schema"], param["name"], spec):
                if not _bounded(schema):
                    unbounded.append(f"{method} {path}: {where}")
        body = op.get("requestBody", {}).get("content", {})
        for media in body.values():
            for where, schema in _integer_schemas(media.get("schema", {}), "body", spec):
                if not _bounded(schema):
                    unbounded.append(f"{method} {path}: {where}")
    assert unbounded == []


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    make_station()
    return staff(client, 1)["admin"]


@pytest.mark.parametrize("too_big", [TOO_BIG, INT32_MAX + 1], ids=["64-bit", "32-bit"])
def test_an_id_past_what_its_column_holds_gets_a_4xx_naming_it_on_every_operation(
    client: TestClient, admin: dict[str, str], too_big: int
) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    checked = 0
    for method, path, op in _operations(spec):
        params = [p for p in op.get("parameters", []) if p["in"] == "path"]
        ints = [p["name"] for p in params if _integer_schemas(p["schema"], p["name"], spec)]
        if not ints:
            continue
        url = path
        for p in params:
            url = url.replace("{" + p["name"] + "}", str(too_big) if p["name"] in ints else "x")
        r = client.request(method, url, headers=admin)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        if r.status_code == 422:
            assert re.search("|".join(ints), r.json()["detail"]), (method, path, r.text)
        checked += 1
    assert checked >= 20  # the ids of stations, segments, broadcasts, devices, warnings...
