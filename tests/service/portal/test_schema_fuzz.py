"""Schema fuzzing: schemathesis with all of its checks against the live server's own OpenAPI schema.

Zero 5xx, every response as documented (status, content type, headers, body schema; errors in the
one envelope), invalid requests refused, valid ones accepted. Bounded so it fits CI: a fixed seed,
``MAX_EXAMPLES`` cases per operation and phase, no shrinking. Operation-specific allowances (domain
rules a JSON schema cannot state) live in ``schemathesis.toml`` beside this file, each with its reason.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.config import ApiSettings, WebhookSettings
from tests.service.portal.conftest import Portal, start_portal, stop_portal

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 20
SEED = 20240501
MIN_OPERATIONS = 20


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator) -> Iterator[Portal]:  # type: ignore[no-untyped-def]
    """Its own server and data: fuzzed webhooks and uploads must not reach the other tests.

    No webhook target is allowed (``allow_public=False``, no allowed hosts): a fuzzed URL is refused at
    registration without a DNS query, so nothing is ever sent to a generated host.
    """
    server, running = start_portal(
        tmp_path_factory.mktemp("fuzz") / "data", embedder, parser, generator,
        webhooks=WebhookSettings(timeout_s=0.5, max_attempts=1, allow_public=False),
        api=ApiSettings(rate_limit_per_s=10_000, rate_limit_burst=10_000),
    )
    yield running
    stop_portal(server, running)


def test_schemathesis_all_checks_find_nothing(target: Portal, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{target.url}/openapi.json",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--no-shrink",
        "--workers", "1", "--suppress-health-check", "all", "--request-timeout", "120",
        "--header", f"Authorization: {target.headers['Authorization']}",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = run.stdout[-12000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    tested = re.search(r"Tested:\s+(\d+)", run.stdout)
    assert tested is not None and int(tested.group(1)) >= MIN_OPERATIONS, report  # a schema that loads nothing fails
