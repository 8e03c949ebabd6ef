"""The service's process-wide state, built once at start-up from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ingest.audit.anchor import Anchorer
from ingest.config import Settings
from ingest.placement import check_placement
from ingest.retention import RetentionScheduler
from ingest.runtime import Components, build_components
from ingest.worker import BackgroundWorker
from service.answering.answerer import Answerer
from service.auth.access import AccessControl, build_access
from service.generation.llama_cpp_generator import SupervisedLlamaGenerator
from service.generation.openai_generator import OpenAICompatibleGenerator
from service.generation.port import Generator
from service.observability.install import instrument
from service.rerank.factory import make_reranker
from service.rerank.port import Reranker

log = logging.getLogger(__name__)


def make_generator(settings: Settings) -> Generator:
    """A configured OpenAI-compatible server (e.g. vLLM) if ``base_url`` is set, else the supervised llama.cpp."""
    cfg = settings.generator
    if cfg.base_url:
        key = cfg.api_key.get_secret_value() if cfg.api_key else None
        return OpenAICompatibleGenerator(cfg.base_url, cfg.model, key, cfg.timeout_s)
    return SupervisedLlamaGenerator(state_dir=settings.generator_dir, n_ctx=cfg.n_ctx)


@dataclass(kw_only=True)
class AppState:
    settings: Settings
    components: Components
    generator: Generator
    worker: BackgroundWorker | None
    retention: RetentionScheduler | None = None
    access: AccessControl | None = None  # None: every authenticated route answers 503 (fail closed)
    reranker: Reranker | None = None  # optional second stage (settings.retrieval.rerank)
    anchorer: Anchorer | None = None  # anchors the audit chain's head outside the data directory (settings.audit)
    answerer: Answerer = field(init=False)  # question in, grounded answer out (every surface calls it)

    def __post_init__(self) -> None:
        self.answerer = Answerer(self.settings, self.components, self.generator, self.reranker)

    def close(self) -> None:
        if self.retention is not None:
            self.retention.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.anchorer is not None:
            self.anchorer.stop()  # after the last writer: the shutdown anchor covers every record
        self.generator.close()
        self.components.close()


def build_state(
    settings: Settings,
    *,
    start_worker: bool = True,
    components: Components | None = None,
    generator: Generator | None = None,
) -> AppState:
    """Warm every component; the generator starts last because it is the slowest.

    Passing ``components`` or ``generator`` reuses already-warm ones (tests, benchmarks).

    :raises ConfigurationError: production mode with the master key in the data directory or without anchors.
    """
    check_placement(settings, serving=True)
    components = components or build_components(settings)
    components.embedder.embed_query("warm up")  # the first search then pays no start of the query path
    access = build_access(settings, components.engine)  # before the slow generator: a bad policy fails fast
    if generator is None:
        generator = make_generator(settings)
        generator.warm_up()
    generator = instrument(generator)
    worker = BackgroundWorker(components) if start_worker else None
    if worker is not None:
        worker.start()
    reranker = make_reranker(settings.retrieval.rerank, components.sparse)
    return AppState(
        settings=settings,
        components=components,
        generator=generator,
        worker=worker,
        retention=_start_compliance_tasks(components, start_worker),
        access=access,
        reranker=reranker,
        anchorer=_start_anchoring(components, start_worker),
    )


def _start_compliance_tasks(components: Components, background: bool) -> RetentionScheduler | None:
    """Load the PII models off the request path and start the retention schedule (a serving process only)."""
    if not background:
        return None
    components.compliance.warm_up_detector_in_background()
    interval = components.settings.compliance.retention_interval_s
    if not interval:
        return None
    scheduler = RetentionScheduler(components, interval)
    scheduler.start()
    return scheduler


def _start_anchoring(components: Components, background: bool) -> Anchorer | None:
    """Anchor the audit chain's head now, on its schedule and at shutdown (a serving process with an anchor file)."""
    anchors = components.compliance.audit.anchors
    if not background or anchors is None:
        if background:
            log.warning("audit.not_anchored hint=%s", "set ENCLAVE_AUDIT__ANCHOR_FILE to detect a cut audit tail")
        return None
    cfg = components.settings.audit
    anchorer = Anchorer(components.compliance.audit, anchors, cfg.anchor_interval_s, cfg.anchor_every_records)
    anchorer.start()
    return anchorer
