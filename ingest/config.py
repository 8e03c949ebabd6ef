"""Enclave's one settings class.

Every name here is a stable interface: operators and external checks set them as environment
variables with the ``ENCLAVE_`` prefix and ``__`` between nested sections
(``ENCLAVE_GENERATOR__BASE_URL``). Everything Enclave writes lives under ``data_dir``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class IndexSettings(BaseModel):
    """Vector index: Qdrant Edge in-process (default) or a Qdrant server/cluster."""

    backend: Literal["edge", "qdrant"] = "edge"
    url: str | None = None
    collection: str = "enclave"
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_ef: int = 256  # 128: recall@10 0.94 under a 50% ACL filter at 100k chunks; 256: 0.99, +0.3 ms (bench/query)
    # Qdrant Edge: segments with more dense vectors than this (KB) get an HNSW graph, built by the ingest
    # worker once that many lack one (ingest.index.maintenance); smaller ones are scanned
    full_scan_kb: int = Field(default=10_000, ge=1)
    # Qdrant Edge: threads that search one request's segments in parallel (the library's default: one per CPU).
    # 1: less time per search alone and more searches/s at 4-16 at once, 100k chunks on 2 cores
    # (bench/search_threads.py, README "Performance"): concurrent requests already keep the cores busy
    search_threads: int = Field(default=1, ge=1)
    # Qdrant server/cluster only (backend "qdrant"); applied when Enclave creates the collection
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    shards: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    write_consistency: int = Field(default=1, ge=1)  # replicas that must acknowledge a write
    upsert_batch: int = Field(default=256, ge=1)
    upsert_parallel: int = Field(default=4, ge=1)


class EmbedderSettings(BaseModel):
    """Sentence-transformers model; ``None`` means the packaged all-MiniLM-L6-v2."""

    model_path: Path | None = None
    batch_size: int = 64  # chunk texts the ingest worker embeds together (packed across documents)
    # texts per forward pass: a batch is sorted by length and cut into runs of this many, each padded to its
    # longest. 16 pads 10 % of a mixed contract/abstract batch where 64 pads 22 %: ~14 % less embedding time
    forward_batch: int = Field(default=16, ge=1)
    # torch: sentence-transformers on PyTorch. onnx: ONNX Runtime on an export of the same weights, made
    # once and cached in <data_dir>/models (README "Performance"). An index built with one refuses the other.
    backend: Literal["torch", "onnx"] = "torch"
    # torch only: bf16 autocast on CPUs with AMX/AVX512-BF16 (auto picks it there), else fp32; same vectors
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    onnx_precision: Literal["fp32", "int8"] = "int8"
    threads: int | None = Field(default=None, ge=1)  # ONNX Runtime intra-op threads; default: every core
    # torch only: queries embedded by ONNX Runtime fp32 on an export of the same weights (the same vectors,
    # checked when it starts; about 2x faster for one short text), or by PyTorch like the passages
    query_backend: Literal["onnx", "torch"] = "onnx"


class ChunkSettings(BaseModel):
    """Token budget per chunk, counted with the embedder's own tokenizer."""

    max_tokens: int = Field(default=200, ge=16, le=254)
    overlap_tokens: int = Field(default=24, ge=0, le=128)


class GeneratorSettings(BaseModel):
    """OpenAI-compatible generator; without ``base_url`` Enclave supervises a local llama.cpp server."""

    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 120.0
    max_tokens: int = 160
    temperature: float = 0.1
    frequency_penalty: float = 0.3
    n_ctx: int = 2048


class RerankSettings(BaseModel):
    """Optional second stage: ``vllm`` (a served cross-encoder's ``/rerank``) or ``mmr`` (diversity)."""

    kind: Literal["none", "mmr", "vllm"] = "none"
    base_url: str | None = None  # vllm: the server root, e.g. http://reranker:8000
    model: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 10.0
    candidates: int = Field(default=30, ge=1, le=200)  # fetched from the index for the reranker to reorder
    mmr_lambda: float = Field(default=0.7, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _vllm_needs_url(self) -> RerankSettings:
        if self.kind == "vllm" and not self.base_url:
            raise ValueError("retrieval.rerank.kind=vllm needs ENCLAVE_RETRIEVAL__RERANK__BASE_URL")
        return self


class RetrievalSettings(BaseModel):
    """How many sources reach the model, and the evidence needed to answer at all."""

    k: int = Field(default=3, ge=1, le=50)
    candidates: int = Field(default=50, ge=1, le=500)
    min_dense_score: float = 0.40  # calibrated: README "Retrieval and answer quality" (bench.eval_answers signals)
    snippet_chars: int = 300
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    # a question naming one of the retrieved documents by the title and parties its opening states (ingest.preamble)
    # gets that document's chunks ranked by its ask first (service.retrieval.focused)
    document_focus: bool = True
    # the focused search also embeds the ask: its meaning finds the feedback clauses and steers the ranking inside
    # the document (service.retrieval.focused); CUAD span recall@10 +0.008 dev, +0.017 held-out wording, for one
    # more embedding and search (dev p50 28.6 -> 40.9 ms in bench.cuad_reworded): README "Focus that embeds the ask"
    focus_ask_embedding: bool = False


class AnswerSettings(BaseModel):
    """How answers are made (README "Answers and refusals"): every sentence shown is quoted from a source
    (``extractive``) or generated and verified against the sentences it cites (``generative``); ``auto``
    quotes when the question asks for a value (a law, date, period, amount) and generates otherwise."""

    mode: Literal["extractive", "generative", "auto"] = "extractive"
    candidates: int = Field(default=10, ge=1, le=50)  # retrieved chunks whose sentences may answer
    focus_chunks: int = Field(default=8, ge=0, le=50)  # chunks of the named document searched with the ask alone
    max_quotes: int = Field(default=2, ge=1, le=5)  # sentences quoted in an extractive answer
    quote_margin: float = Field(default=0.05, ge=0.0, le=1.0)  # a second quote must score within this of the best
    dense_weight: float = 0.5
    lexical_weight: float = 0.35
    kind_weight: float = 0.2
    # Calibrated (bench/answer_trust.py calibrate; README "Answers and refusals"): the best sentence answers when
    # its cosine to the ask is >= min_sentence_dense and it holds >= min_sentence_lexical of the ask's terms (or
    # the asked-for value), or when its cosine alone is >= confident_dense; a question naming parties needs a
    # retrieved document that mentions >= min_party_coverage of their words.
    min_sentence_dense: float = 0.30
    min_sentence_lexical: float = 0.30
    confident_dense: float = 0.40
    min_party_coverage: float = Field(default=0.5, ge=0.0, le=1.0)
    min_content_overlap: float = Field(default=0.6, ge=0.0, le=1.0)  # verifier: content words found in the evidence


class ObservabilitySettings(BaseModel):
    """Metrics and traces. ``/metrics`` is on; traces are exported only when an exporter is chosen."""

    metrics_enabled: bool = True
    # ENCLAVE_OBSERVABILITY__METRICS_TOKEN: /metrics answers 401 unless the scraper sends "Authorization: Bearer
    # <token>" (without it, anyone who reaches the API port reads request rates, queue depth, model latency).
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    traces_exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str | None = None  # http://collector:4318/v1/traces; None: OTEL_EXPORTER_OTLP_* or localhost
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    service_name: str = "enclave"


class ComplianceSettings(BaseModel):
    """Keys, audit, redaction, erasure and retention (the policies themselves live in ``policies/``)."""

    key_backend: Literal["local"] = "local"
    master_key_file: Path | None = None  # default: <data_dir>/keys/master.key (0600, created at first start)
    policies_dir: Path | None = None  # default: the repository's policies/ directory
    redaction_enabled: bool = True
    subject_field: str = "subject_id"  # the metadata field that names a document's data subject
    retention_interval_s: float = Field(default=3600.0, ge=0)  # 0 turns the service's retention schedule off


class AuditSettings(BaseModel):
    """Anchors of the audit chain's head, kept outside the data directory (README "Compliance").

    Whoever can write the data directory can cut the chain's tail, or (holding the master key) re-sign
    it after removing a record; neither shows in the chain alone. An anchor is a signed line appended
    to ``anchor_file`` under a key in ``anchor_key_file``, neither of them under ``data_dir``.
    """

    anchor_file: Path | None = None  # append-only JSON lines; required in production mode
    anchor_key_file: Path | None = None  # default: <anchor_file>.key (0600, created with the first anchor)
    anchor_interval_s: float = Field(default=60.0, gt=0)  # anchor this often when the head moved
    anchor_every_records: int = Field(default=1000, ge=1)  # ...and as soon as this many records were appended

    @property
    def resolved_anchor_key_file(self) -> Path | None:
        if self.anchor_file is None:
            return None
        return self.anchor_key_file or self.anchor_file.with_name(self.anchor_file.name + ".key")


class BackupSettings(BaseModel):
    """Encrypted backups (README "Backup and restore"): the archive key and the erasure ledger live outside
    ``data_dir``, so a copy of the data directory or of an archive carries neither."""

    key_file: Path | None = None  # 32 random bytes, base64 (enclave backup key FILE); or a passphrase:
    passphrase: SecretStr | None = None  # stretched with scrypt; the salt travels in the archive header
    erasure_ledger: Path | None = None  # append-only JSON lines of erased ids, re-applied on every restore
    pg_bin_dir: Path | None = None  # pg_dump/pg_restore for a PostgreSQL store; default: the newest found
    # Where POST /v1/admin/backups writes archives of the running service (outside data_dir); unset: the
    # route answers 409 and backups are taken with `enclave backup DEST` while the service is stopped.
    dir: Path | None = None


class ApiSettings(BaseModel):
    """What every REST caller gets: a body size cap and a per-principal rate limit (token bucket)."""

    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)  # JSON bodies; uploads use max_upload_bytes
    rate_limit_per_s: float = Field(default=20.0, ge=0)  # sustained requests per second per principal; 0: off
    rate_limit_burst: int = Field(default=60, ge=1)  # requests a principal may make at once after being idle
    # Reverse proxies whose X-Forwarded-For names the client (IP addresses or networks); none by default,
    # so the audit trail records the connecting peer unless the operator says which proxy to believe.
    trusted_proxies: list[str] = []


class WebhookSettings(BaseModel):
    """Signed callbacks to portals when ingest jobs finish: delivery timeout and retry schedule."""

    timeout_s: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_s: float = Field(default=2.0, gt=0)  # attempt n waits base * 2**(n-1), capped below
    backoff_max_s: float = Field(default=600.0, gt=0)
    poll_s: float = Field(default=1.0, gt=0)
    # Internal receivers deliveries may reach (everything non-public is refused otherwise): host names,
    # IP addresses or networks, e.g. ["portal.intranet", "10.20.0.0/16"]. README "Webhooks".
    allowed_hosts: list[str] = []
    allow_public: bool = True  # False: only the allowed hosts (a site whose portals are all internal)


class OidcSettings(BaseModel):
    """An OpenID Connect provider whose signed access tokens (JWTs) Enclave accepts as bearer tokens.

    ``provider`` picks where the claims live (Keycloak, Entra ID, Okta or generic); any ``*_claim``
    (a dotted path such as ``realm_access.roles``) overrides the preset. ``role_map`` turns the
    provider's role or group names into Enclave roles (``{"enclave-readers": "reader"}``).
    """

    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    jwks_file: Path | None = None
    algorithms: list[str] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
    leeway_s: int = Field(default=30, ge=0, le=300)  # clock skew allowed on exp/nbf/iat
    jwks_cache_s: float = Field(default=600.0, gt=0)
    jwks_refresh_min_s: float = Field(default=10.0, ge=0)  # an unknown kid refetches the key set at most this often
    provider: Literal["generic", "keycloak", "entra", "okta"] = "generic"
    tenant_claim: str | None = None
    subject_claim: str | None = None
    groups_claim: str | None = None
    roles_claim: str | None = None
    static_tenant: str | None = None  # a single-tenant provider: every token belongs to this tenant
    role_map: dict[str, str] = {}
    # The web page's sign-in (authorisation code + PKCE, a public client): its client id, and the
    # provider's endpoints (default: read from the issuer's /.well-known/openid-configuration).
    web_client_id: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    web_scope: str = "openid profile"

    @property
    def configured(self) -> bool:
        return self.issuer is not None


class AuthSettings(BaseModel):
    """Identity: OIDC bearer tokens and API keys; ``ENCLAVE_MODE``/``ENCLAVE_DEV_API_KEY`` are top-level."""

    oidc: OidcSettings = OidcSettings()
    dev_key_file: Path | None = None  # default: <data_dir>/auth/dev-api-key (0600, dev mode only)
    policy_check_s: float = Field(default=1.0, ge=0)  # how often the Rego files are checked for changes; 0: never


class ParserSettings(BaseModel):
    """Where uploads are parsed."""

    # PDFs and office files in a child process (ingest.parsing.isolated): parsing runs beside the embedder
    # instead of under its GIL, and a parser crash fails one document, not the worker; false: in the worker
    isolated: bool = True


class Settings(BaseSettings):
    """All of Enclave's configuration, read from ``ENCLAVE_*`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="ENCLAVE_",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,  # a rejected setting must not echo secrets (dev key, generator key) into logs
    )

    data_dir: Path = Path(".enclave")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 50 * 1024 * 1024
    mode: Literal["dev", "production"] = "dev"  # ENCLAVE_MODE; production refuses dev keys and demands an identity
    dev_api_key: SecretStr | None = None  # ENCLAVE_DEV_API_KEY: the dev admin key of the default tenant (dev mode)
    default_tenant: str = "default"
    default_collection: str = "default"
    ingest_workers: int = 1
    job_max_attempts: int = 3
    job_stale_after_s: float = Field(default=60.0, gt=0)  # a running job without a heartbeat this long is requeued
    index: IndexSettings = IndexSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    chunking: ChunkSettings = ChunkSettings()
    parser: ParserSettings = ParserSettings()
    generator: GeneratorSettings = GeneratorSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    api: ApiSettings = ApiSettings()
    webhooks: WebhookSettings = WebhookSettings()
    compliance: ComplianceSettings = ComplianceSettings()
    audit: AuditSettings = AuditSettings()
    backup: BackupSettings = BackupSettings()
    auth: AuthSettings = AuthSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @model_validator(mode="after")
    def _reject_contradictions(self) -> Settings:
        if self.index.backend == "qdrant" and not self.index.url:
            raise ValueError("ENCLAVE_INDEX__BACKEND=qdrant needs ENCLAVE_INDEX__URL")
        if self.chunking.overlap_tokens >= self.chunking.max_tokens:
            raise ValueError("ENCLAVE_CHUNKING__OVERLAP_TOKENS must be below MAX_TOKENS")
        self._reject_auth_contradictions()
        self._reject_anchors_in_data_dir()
        return self

    def _reject_anchors_in_data_dir(self) -> None:
        audit = self.audit
        for name, path in (("ANCHOR_FILE", audit.anchor_file), ("ANCHOR_KEY_FILE", audit.resolved_anchor_key_file)):
            if path is not None and inside(path, self.data_dir):
                raise ValueError(
                    f"ENCLAVE_AUDIT__{name} lies inside ENCLAVE_DATA_DIR, where whoever can cut the audit chain "
                    "could rewrite it too: put it on a separate (append-only) mount"
                )
        if self.backup.dir is not None and inside(self.backup.dir, self.data_dir):
            raise ValueError(
                "ENCLAVE_BACKUP__DIR lies inside ENCLAVE_DATA_DIR: a backup there is lost with the disk it "
                "protects; put it on another disk"
            )

    def _reject_auth_contradictions(self) -> None:
        oidc = self.auth.oidc
        if self.mode == "production" and self.dev_api_key is not None:
            raise ValueError("ENCLAVE_DEV_API_KEY is for dev mode only: unset it, or set ENCLAVE_MODE=dev")
        if oidc.configured and not (oidc.audience and (oidc.jwks_url or oidc.jwks_file)):
            raise ValueError(
                "ENCLAVE_AUTH__OIDC__ISSUER needs ENCLAVE_AUTH__OIDC__AUDIENCE and a JWKS_URL or JWKS_FILE"
            )
        if not oidc.configured and (oidc.jwks_url or oidc.jwks_file):
            raise ValueError("ENCLAVE_AUTH__OIDC__JWKS_URL/JWKS_FILE need ENCLAVE_AUTH__OIDC__ISSUER")
        if any(alg.upper().startswith("HS") or alg.lower() == "none" for alg in oidc.algorithms):
            raise ValueError("ENCLAVE_AUTH__OIDC__ALGORITHMS may list only asymmetric algorithms (RS*, PS*, ES*)")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'enclave.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def generator_dir(self) -> Path:
        return self.data_dir / "generator"

    @property
    def master_key_file(self) -> Path:
        return self.compliance.master_key_file or self.data_dir / "keys" / "master.key"

    @property
    def dev_key_file(self) -> Path:
        return self.auth.dev_key_file or self.data_dir / "auth" / "dev-api-key"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def ensure_dirs(self) -> None:
        """Create the data directory tree (idempotent)."""
        for path in (self.data_dir, self.index_dir, self.blob_dir, self.generator_dir, self.log_dir):
            path.mkdir(parents=True, exist_ok=True)


def inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` is ``directory`` or lies under it (symbolic links resolved)."""
    return path.resolve().is_relative_to(directory.resolve())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
