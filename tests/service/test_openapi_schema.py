"""The published OpenAPI schema: links that lead somewhere, and fuzzing allowances that stay narrow.

Fast checks on the generated schema (no server); ``tests/service/portal/test_schema_fuzz.py`` runs
schemathesis against a live one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from tests.conftest import REPO, make_settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.config import SchemathesisConfig  # noqa: E402

FUZZ_CONFIG = REPO / "tests" / "service" / "portal" / "schemathesis.toml"
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    schema: dict[str, Any] = create_app(make_settings(Path(tmp_path_factory.mktemp("openapi")))).openapi()
    return schema


def _operations(openapi: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        op["operationId"]: (path, op) for path, ops in openapi["paths"].items() for m, op in ops.items() if m in METHODS
    }


def test_every_link_names_an_operation_and_fills_its_path_parameters(openapi: dict[str, Any]) -> None:
    operations = _operations(openapi)
    links = [
        link
        for _, op in operations.values()
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) >= 8
    for link in links:
        path, _ = operations[link["operationId"]]
        assert set(link["parameters"]) == set(re.findall(r"\{(\w+)\}", path)), link
        assert all(v.startswith("$response.body#/") for v in link["parameters"].values()), link
    document_routes = {p for p, _ in (operations[link["operationId"]] for link in links)}
    assert {"/v1/documents/{document_id}", "/v1/documents/{document_id}/passage"} <= document_routes


def test_fuzzing_allowances_apply_only_to_the_operations_they_name(openapi: dict[str, Any]) -> None:
    """Separate include-path/include-method filters match either (every POST): each allowance must stay put."""
    project = SchemathesisConfig.from_path(str(FUZZ_CONFIG)).projects.get_default()
    schema = schemathesis.openapi.from_dict(openapi)
    widened = {"POST /v1/documents", "PUT /v1/documents/{document_id}", "POST /v1/webhooks"}
    for path, ops in openapi["paths"].items():
        for method in (m for m in ops if m in METHODS):
            checks = project.checks_config_for(operation=schema[path][method.upper()], phase="fuzzing")
            expected = set(checks.positive_data_acceptance.expected_statuses)
            name = f"{method.upper()} {path}"
            assert "429" not in expected, name  # the rate limiter is off on the fuzz target
            assert bool(expected & {"400", "415", "422"}) == (name in widened), (name, expected)
