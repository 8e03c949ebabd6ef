"""``enclave ingest`` of plain text loads only what it uses: every library it imports is start-up a user waits for.

What a user would notice if it broke: ``enclave ingest notes.txt`` taking seconds longer again
(issue 17 measured 12 s of a 21 s run in start-up) because the web server, sentence-transformers,
``unstructured`` with spaCy and Presidio, or the OTLP exporter came back onto its import path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOT_FOR_PLAIN_TEXT = [
    "fastapi",
    "uvicorn",
    "sentence_transformers",
    "sklearn",
    "unstructured",
    "spacy",
    "presidio_analyzer",
    "opentelemetry.exporter.otlp.proto.http",
]
PROBE = """
import json, sys
from service.cli import app
try:
    app(["ingest", sys.argv[1]])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "loaded": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}))
"""


def test_ingest_of_plain_text_imports_no_web_server_parser_library_or_pii_models(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "terms.txt").write_text("Either party may terminate this agreement on 30 days' written notice.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")} | {
        "ENCLAVE_DATA_DIR": str(tmp_path / "data"),
        "DO_NOT_TRACK": "1",
    }
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(source), json.dumps(NOT_FOR_PLAIN_TEXT)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "loaded": []}, run.stderr[-2000:]
