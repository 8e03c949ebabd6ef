"""The service's process-wide state, built once at start-up from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ingest.config import Settings
from ingest.retention import RetentionScheduler
from ingest.runtime import Components, build_components
from ingest.worker import BackgroundWorker
from service.answering.answerer import Answerer
from service.auth.access import AccessControl, build_access
from service.generation.port import Generator
from service.observability import instrument
from service.rerank.factory import make_reranker
from service.rerank.port import Reranker

log = logging.getLogger(__name__)


def make_generator(settings: Settings) -> Generator:
    """A configured OpenAI-compatible server (e.g. vLLM) if ``base_url`` is set, else the supervised llama.cpp."""
    cfg = settings.generator
    if cfg.base_url:
        from service.generation.openai_generator import OpenAICompatibleGenerator

        key = cfg.api_key.get_secret_value() if cfg.api_key else None
        return OpenAICompatibleGenerator(cfg.base_url, cfg.model, key, cfg.timeout_s)
    from service.generation.factory import SupervisedLlamaGenerator

    return SupervisedLlamaGenerator(state_dir=settings.generator_dir, n_ctx=cfg.n_ctx)


@dataclass
class AppState:
    settings: Settings
    components: Components
    generator: Generator
    worker: BackgroundWorker | None
    retention: RetentionScheduler | None = None
    access: AccessControl | None = None  # None: every authenticated route answers 503 (fail closed)
    reranker: Reranker | None = None  # optional second stage (settings.retrieval.rerank)
    answerer: Answerer = field(init=False)  # question in, grounded answer out (every surface calls it)

    def __post_init__(self) -> None:
        self.answerer = Answerer(self.settings, self.components, self.generator, self.reranker)

    def close(self) -> None:
        if self.retention is not None:
            self.retention.stop()
        if self.worker is not None:
            self.worker.stop()
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
    """
    components = components or build_components(settings)
    access = build_access(settings, components.engine)  # before the slow generator: a bad policy fails fast
    if generator is None:
        generator = make_generator(settings)
        generator.warm_up()
    generator = instrument(generator)
    worker = BackgroundWorker(components) if start_worker else None
    if worker is not None:
        worker.start()
    reranker = make_reranker(settings.retrieval.rerank, components.sparse)
    return AppState(settings, components, generator, worker, _start_compliance_tasks(components, start_worker), access,
                    reranker)


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
