"""The Rego policy engine (regopy): entitlements, decisions, reloads, and failing closed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ingest.policy_data import PolicyError
from service.policy.regopy_engine import RegoPolicyEngine, request_reload
from tests.conftest import REPO


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    return target


def _facts(roles: list[str], groups: list[str] = (), subject: str = "ann") -> dict[str, object]:  # type: ignore[assignment]
    return {"tenant": "t", "subject": subject, "groups": list(groups), "roles": roles}


def test_classifications_follow_roles_and_groups(policies: Path) -> None:
    engine = RegoPolicyEngine(policies)
    engine.warm_up()
    assert engine.entitlements(_facts(["reader"])).classifications == ("confidential", "internal", "public")
    assert "phi" in engine.entitlements(_facts(["reader"], ["phi-access"])).classifications
    assert engine.entitlements(_facts(["auditor"])).classifications == ()
    assert set(engine.entitlements(_facts(["admin"])).classifications) == {
        "public",
        "internal",
        "confidential",
        "phi",
        "privileged",
    }


def test_ethical_walls_from_data_and_from_screening_groups(policies: Path) -> None:
    data = json.loads((policies / "access.json").read_text())
    (policies / "access.json").write_text(
        json.dumps({**data, "walls": [{"groups": ["matter:A", "matter:B", "matter:C"]}]})
    )
    engine = RegoPolicyEngine(policies)
    engine.warm_up()
    assert engine.entitlements(_facts(["reader"], ["matter:A"])).excluded_groups == ("matter:B", "matter:C")
    assert engine.entitlements(_facts(["reader"], ["legal", "screened:hr"])).excluded_groups == ("hr",)
    assert engine.entitlements(_facts(["reader"], ["legal"])).excluded_groups == ()


def test_decisions_name_what_is_missing(policies: Path) -> None:
    engine = RegoPolicyEngine(policies)
    engine.warm_up()
    assert engine.decide("query", _facts(["reader"]), ["reader"]).allowed
    assert engine.decide(
        "ingest", _facts(["admin"]), ["contributor"], {"collection": "c", "classification": "phi"}
    ).allowed
    denied = engine.decide("manage_keys", _facts(["reader", "contributor"]), ["admin"])
    assert not denied.allowed and denied.reason == "this needs the admin role; ask an administrator to grant it"
    odd = engine.decide(
        "ingest",
        _facts(["contributor"], ['a "quoted" group']),
        ["contributor"],
        {"collection": 'c"1', "classification": 'x"y\n', "acl": {"groups": ['a "quoted" group']}},
    )
    assert not odd.allowed and 'x"y\n' in odd.reason  # strings with quotes survive the trip through Rego


def test_a_file_change_reloads_and_a_broken_file_keeps_the_previous_policy(policies: Path) -> None:
    engine = RegoPolicyEngine(policies, check_interval_s=0.0001)
    engine.warm_up()
    first = engine.status()
    data = json.loads((policies / "access.json").read_text())
    data["role_classifications"]["reader"] = ["public"]
    (policies / "access.json").write_text(json.dumps(data))
    assert engine.entitlements(_facts(["reader"])).classifications == ("public",)
    second = engine.status()
    assert second.revision != first.revision

    (policies / "extra.rego").write_text("package enclave.access\n\nimport rego.v1\n\nbroken if {\n")
    assert engine.entitlements(_facts(["reader"])).classifications == ("public",)
    status = engine.status()
    assert status.revision == second.revision and status.last_error and status.last_error.startswith("extra.rego:")


def test_a_policy_without_the_entrypoints_is_rejected(policies: Path) -> None:
    engine = RegoPolicyEngine(policies, check_interval_s=0)
    engine.warm_up()
    good = engine.status().revision
    (policies / "access.rego").write_text("package enclave.access\n\nimport rego.v1\n\nallow := true\n")
    status = engine.reload()
    assert status.revision == good and "decision" in str(status.last_error)
    assert engine.decide("query", _facts(["reader"]), ["reader"]).allowed


def test_reload_on_request_even_without_file_polling(policies: Path) -> None:
    engine = RegoPolicyEngine(policies, check_interval_s=0)
    engine.warm_up()
    data = json.loads((policies / "access.json").read_text())
    data["role_classifications"]["reader"] = ["internal"]
    (policies / "access.json").write_text(json.dumps(data))
    assert engine.entitlements(_facts(["reader"])).classifications == ("confidential", "internal", "public")
    request_reload()  # what the SIGHUP handler does
    assert engine.entitlements(_facts(["reader"])).classifications == ("internal",)


def test_no_policy_no_service(tmp_path: Path, policies: Path) -> None:
    with pytest.raises(PolicyError, match="no .rego files"):
        RegoPolicyEngine(tmp_path).warm_up()
    (policies / "access.rego").write_text("package enclave.access\n\ndecision := {\n")
    with pytest.raises(PolicyError, match=r"access\.rego:\d+:\d+"):
        RegoPolicyEngine(policies).warm_up()
