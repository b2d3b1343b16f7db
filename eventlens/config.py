"""Settings, read once from flags and `EVENTLENS_*` environment variables.

Every setting is documented in docs/operations.md (a test checks that).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None else int(raw)


def _quarter_of_memory_mb() -> int:
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1024
    return max(256, total // 4 // 2**20)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw is None else float(raw)


def parse_rate(text: str) -> float:
    """A sampling rate "0.25" or "25%" as a fraction in [0, 1]; ValueError otherwise."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"sampling rate {text!r} is not a number or a percentage") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"sampling rate {text!r} is outside 0-1 (0%-100%)")
    return value


def parse_project_rates(text: str) -> dict[int, float]:
    """ "ID:RATE,ID:RATE" (rates as in `parse_rate`) as {project id: fraction}; ValueError."""
    out: dict[int, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        pid, sep, rate = part.partition(":")
        if not sep or not pid.strip().isdigit():
            raise ValueError(f"per-project sampling rate {part!r} is not PROJECT_ID:RATE")
        out[int(pid)] = parse_rate(rate)
    return out


@dataclass(frozen=True)
class Settings:
    """Runtime settings. Sizes in bytes, durations in seconds."""

    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("EVENTLENS_DATA_DIR", "eventlens-data"))
    )
    host: str = field(default_factory=lambda: os.environ.get("EVENTLENS_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("EVENTLENS_PORT", 8000))
    # fsync before acknowledging capture. Off only for benchmarks of the non-durable ratio.
    fsync: bool = field(default_factory=lambda: _env_bool("EVENTLENS_FSYNC", True))
    # Where event tables live: "" = <data_dir>/projects/<id>/events (local files), or
    # "s3://bucket/prefix" (object storage; AWS_* variables, eventlens/storage/object_store.py).
    # The ingest log, persons (SQLite) and metadata stay in data_dir on local disk.
    storage_url: str = field(default_factory=lambda: os.environ.get("EVENTLENS_STORAGE_URL", ""))
    # Where the parallel engine runs sub-tasks: "local" (threads) or "ray" (a Ray cluster,
    # docs/deploy-cluster.md); ray_address "" starts a local Ray instance.
    query_executor: str = field(
        default_factory=lambda: os.environ.get("EVENTLENS_QUERY_EXECUTOR", "local")
    )
    ray_address: str = field(default_factory=lambda: os.environ.get("EVENTLENS_RAY_ADDRESS", ""))
    # Bucket-owner actors the Ray executor starts (each keeps its share of person buckets
    # resident), and the resident MiB each may hold.
    ray_workers: int = field(default_factory=lambda: _env_int("EVENTLENS_RAY_WORKERS", 2))
    ray_worker_resident_mb: int = field(
        default_factory=lambda: _env_int("EVENTLENS_RAY_WORKER_RESIDENT_MB", 1024)
    )
    # Person buckets per event table (storage.md item 4); fixed when a table is created.
    buckets: int = field(default_factory=lambda: _env_int("EVENTLENS_BUCKETS", 16))
    # The consumer commits at most this often (freshness <= this + commit time).
    commit_interval: float = field(
        default_factory=lambda: _env_float("EVENTLENS_COMMIT_INTERVAL", 0.5)
    )
    compact_min_files: int = field(
        default_factory=lambda: _env_int("EVENTLENS_COMPACT_MIN_FILES", 64)
    )
    # Events per second per project before capture answers 429 (0 = unlimited).
    capture_rate_limit: float = field(
        default_factory=lambda: _env_float("EVENTLENS_CAPTURE_RATE_LIMIT", 0.0)
    )
    # Readiness (`/_ready`) fails when the oldest acknowledged event not yet in its table is
    # older than this, or the data directory's filesystem has less free space than this.
    ready_max_lag_seconds: float = field(
        default_factory=lambda: _env_float("EVENTLENS_READY_MAX_LAG_SECONDS", 60.0)
    )
    min_free_disk_mb: int = field(
        default_factory=lambda: _env_int("EVENTLENS_MIN_FREE_DISK_MB", 256)
    )
    max_batch_body: int = 20 * 1024 * 1024
    max_body: int = 2 * 1024 * 1024
    max_event: int = 1024 * 1024
    max_segment_message: int = 32 * 1024
    max_segment_batch: int = 500 * 1024
    # Accounts (docs/operations.md "Accounts"): a session ends after this long without a
    # request (idle) and this long after login whatever happens (absolute), in seconds.
    session_idle_timeout: float = field(
        default_factory=lambda: _env_float("EVENTLENS_SESSION_IDLE_TIMEOUT", 8 * 3600.0)
    )
    session_max_age: float = field(
        default_factory=lambda: _env_float("EVENTLENS_SESSION_MAX_AGE", 7 * 86400.0)
    )
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto: trust it, so the session
    # cookie is marked Secure when the browser talks HTTPS to the proxy.
    trust_proxy: bool = field(default_factory=lambda: _env_bool("EVENTLENS_TRUST_PROXY", False))
    # Failed logins per account within `login_window` seconds before 429 (an address gets ten
    # times as many, since several people may share it).
    login_max_failures: int = field(
        default_factory=lambda: _env_int("EVENTLENS_LOGIN_MAX_FAILURES", 5)
    )
    login_window: float = field(default_factory=lambda: _env_float("EVENTLENS_LOGIN_WINDOW", 900.0))
    # The dashboard's address in links sent by mail and printed by the CLI ("" = http://HOST:PORT
    # for the CLI, the request's own address for the dashboard), e.g. https://analytics.example.com.
    public_url: str = field(default_factory=lambda: os.environ.get("EVENTLENS_PUBLIC_URL", ""))
    # Mail for invite and password-reset links (eventlens/accounts/mail.py): off while smtp_host
    # is empty (links are only printed / shown). Port 587 with STARTTLS is the usual submission.
    smtp_host: str = field(default_factory=lambda: os.environ.get("EVENTLENS_SMTP_HOST", ""))
    smtp_port: int = field(default_factory=lambda: _env_int("EVENTLENS_SMTP_PORT", 587))
    smtp_username: str = field(
        default_factory=lambda: os.environ.get("EVENTLENS_SMTP_USERNAME", "")
    )
    # repr=False: settings are printed and logged in places; the password must never be.
    smtp_password: str = field(
        default_factory=lambda: os.environ.get("EVENTLENS_SMTP_PASSWORD", ""), repr=False
    )
    smtp_from: str = field(
        default_factory=lambda: os.environ.get("EVENTLENS_SMTP_FROM", "eventlens@localhost")
    )
    smtp_starttls: bool = field(default_factory=lambda: _env_bool("EVENTLENS_SMTP_STARTTLS", True))
    smtp_timeout_seconds: float = field(
        default_factory=lambda: _env_float("EVENTLENS_SMTP_TIMEOUT_SECONDS", 10.0)
    )
    log_level: str = field(default_factory=lambda: os.environ.get("EVENTLENS_LOG_LEVEL", "INFO"))
    # Query deadline when a request names none, and the most a request may ask for (seconds).
    query_timeout: float = field(
        default_factory=lambda: _env_float("EVENTLENS_QUERY_TIMEOUT", 30.0)
    )
    query_max_timeout: float = field(
        default_factory=lambda: _env_float("EVENTLENS_QUERY_MAX_TIMEOUT", 300.0)
    )
    # Threads that run queries (bounded: a query past its deadline keeps its slot until it stops).
    query_workers: int = field(default_factory=lambda: _env_int("EVENTLENS_QUERY_WORKERS", 2))
    # Memory for the parallel engine's resident buckets (decoded, person-sorted event columns;
    # docs/adr/0006): MiB, default a quarter of physical memory; 0 = always read Parquet.
    query_resident_mb: int = field(
        default_factory=lambda: _env_int("EVENTLENS_QUERY_RESIDENT_MB", _quarter_of_memory_mb())
    )
    # The parallel engine coalesces person buckets into sub-tasks of at least this many rows
    # (ADR 0004); 0 = one sub-task per bucket (tests and traces that want every bucket apart).
    query_min_task_rows: int = field(
        default_factory=lambda: _env_int("EVENTLENS_QUERY_MIN_TASK_ROWS", 250_000)
    )
    # At server start, read every project's events into the resident buckets in the
    # background (first queries then skip the read and sort).
    query_warm: bool = field(default_factory=lambda: _env_bool("EVENTLENS_QUERY_WARM", True))
    # After a commit, extend the resident buckets of recently queried projects in a background
    # thread, so the next query does not (eventlens/query/follow.py).
    query_follow_commits: bool = field(
        default_factory=lambda: _env_bool("EVENTLENS_QUERY_FOLLOW_COMMITS", True)
    )
    # Query log (JSON lines in <data_dir>/query-log.jsonl, one backup at .1 after rotation):
    # what `eventlens shadow replay --log` replays.
    query_log: bool = field(default_factory=lambda: _env_bool("EVENTLENS_QUERY_LOG", True))
    query_log_max_bytes: int = field(
        default_factory=lambda: _env_int("EVENTLENS_QUERY_LOG_MAX_BYTES", 64 * 1024 * 1024)
    )
    # Result cache (docs/operations.md "Result cache"): "memory" (in-process, the default),
    # "redis" (shared by several servers, `cache_redis_url`) or "off" (every query computes).
    cache_backend: str = field(
        default_factory=lambda: os.environ.get("EVENTLENS_CACHE_BACKEND", "memory")
    )
    cache_redis_url: str = field(
        default_factory=lambda: os.environ.get(
            "EVENTLENS_CACHE_REDIS_URL", "redis://127.0.0.1:6379/0"
        )
    )
    # Bytes of whole answers kept in memory (LRU) and of per-sub-task partials (MiB).
    cache_max_mb: int = field(default_factory=lambda: _env_int("EVENTLENS_CACHE_MAX_MB", 256))
    cache_partials_mb: int = field(
        default_factory=lambda: _env_int("EVENTLENS_CACHE_PARTIALS_MB", 512)
    )
    # Background refreshes (async modes): threads, and refreshes waiting before new ones are shed.
    cache_refresh_workers: int = field(
        default_factory=lambda: _env_int("EVENTLENS_CACHE_REFRESH_WORKERS", 1)
    )
    cache_refresh_queue: int = field(
        default_factory=lambda: _env_int("EVENTLENS_CACHE_REFRESH_QUEUE", 32)
    )
    # Cross-server single flight: a computing server's lease, renewed while it computes; a
    # crashed owner's lease lapses after this many seconds and another server computes.
    cache_lease_seconds: float = field(
        default_factory=lambda: _env_float("EVENTLENS_CACHE_LEASE_SECONDS", 5.0)
    )
    # lazy_async refreshes an out-of-date answer only once it is this old (seconds).
    cache_lazy_seconds: float = field(
        default_factory=lambda: _env_float("EVENTLENS_CACHE_LAZY_SECONDS", 900.0)
    )
    # How long Redis keeps an answer or a query status nobody asked for again (seconds).
    cache_ttl_seconds: float = field(
        default_factory=lambda: _env_float("EVENTLENS_CACHE_TTL_SECONDS", 7 * 86_400.0)
    )
    # Shadow mode (docs/shadow-mode.md): off unless `shadow_candidate` names an engine.
    # shadow_primary "" = the query service's default engine.
    shadow_primary: str = field(
        default_factory=lambda: os.environ.get("EVENTLENS_SHADOW_PRIMARY", "")
    )
    shadow_candidate: str = field(
        default_factory=lambda: os.environ.get("EVENTLENS_SHADOW_CANDIDATE", "")
    )
    # Fraction of the primary's queries also run on the candidate: 0-1 or a percentage ("10%").
    shadow_sample: float = field(
        default_factory=lambda: parse_rate(os.environ.get("EVENTLENS_SHADOW_SAMPLE", "1"))
    )
    # Per-project overrides of shadow_sample: "ID:RATE,ID:RATE" (e.g. "3:100%,7:0").
    shadow_sample_projects: str = field(
        default_factory=lambda: os.environ.get("EVENTLENS_SHADOW_SAMPLE_PROJECTS", "")
    )
    shadow_workers: int = field(default_factory=lambda: _env_int("EVENTLENS_SHADOW_WORKERS", 1))
    # Candidate runs waiting for a worker; when full, new ones are shed (counted).
    shadow_queue: int = field(default_factory=lambda: _env_int("EVENTLENS_SHADOW_QUEUE", 4))
    shadow_timeout: float = field(
        default_factory=lambda: _env_float("EVENTLENS_SHADOW_TIMEOUT", 60.0)
    )
    shadow_tolerance: float = field(
        default_factory=lambda: _env_float("EVENTLENS_SHADOW_TOLERANCE", 1e-9)
    )
    shadow_max_result_bytes: int = field(
        default_factory=lambda: _env_int("EVENTLENS_SHADOW_MAX_RESULT_BYTES", 256 * 1024)
    )
    # Cut-over policy of `eventlens shadow report`.
    shadow_min_days: float = field(
        default_factory=lambda: _env_float("EVENTLENS_SHADOW_MIN_DAYS", 14.0)
    )
    shadow_min_queries: int = field(
        default_factory=lambda: _env_int("EVENTLENS_SHADOW_MIN_QUERIES", 1000)
    )

    # FAULT INJECTION, for tests only (the end-to-end alert tests): off by default, and never
    # to be set in production. Share of capture requests answered 503 without writing, and
    # seconds every insight query sleeps before its engine runs.
    fault_capture_error_rate: float = field(
        default_factory=lambda: parse_rate(
            os.environ.get("EVENTLENS_FAULT_CAPTURE_ERROR_RATE", "0")
        )
    )
    fault_query_delay: float = field(
        default_factory=lambda: _env_float("EVENTLENS_FAULT_QUERY_DELAY", 0.0)
    )

    @property
    def meta_db(self) -> Path:
        return self.data_dir / "meta.db"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    def project_dir(self, project_id: int) -> Path:
        return self.data_dir / "projects" / str(project_id)

    def event_table_dir(self, project_id: int) -> Path:
        """The local directory of the project's event table (when storage_url is "")."""
        return self.project_dir(project_id) / "events"

    def event_table_location(self, project_id: int) -> Path | str:
        """Where the project's event table lives: `event_table_dir`, or under storage_url
        ("s3://bucket/prefix/projects/<id>/events")."""
        if not self.storage_url:
            return self.event_table_dir(project_id)
        return f"{self.storage_url.rstrip('/')}/projects/{project_id}/events"

    def state_db(self, project_id: int) -> Path:
        """Per-project SQLite: persons, distinct ids, uuid dedupe index, dead letters."""
        return self.project_dir(project_id) / "state.db"

    def with_data_dir(self, data_dir: Path) -> Settings:
        from dataclasses import replace

        return replace(self, data_dir=data_dir)
