"""All settings in one typed table.

Precedence, lowest first: the defaults shipped in the package (`ingest/defaults/settings.toml`,
read with importlib.resources) < the settings file (`--config PATH`, else `$NEWS_INGEST_CONFIG`,
else `config/settings.toml` in the working directory) < environment
`NEWS_INGEST_<SECTION>_<NAME>` < command-line flags (applied by the CLI through
`Settings.with_overrides`). `load` resolves all of that once; every role is handed the result.

Writable state (the embedded server's data) lives under `state_home()`, never in the package.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from contextvars import ContextVar
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_URL = "https://github.com/news-ingest/news-ingest"
LOCAL_CONFIG = Path("config")  # a config/ in the working directory overrides the packaged defaults
_files = contextlib.ExitStack()  # packaged files extracted to disk (only for zipped installs)
atexit.register(_files.close)


def packaged(name: str) -> Path:
    """A default file shipped in the package (`ingest/defaults/<name>`), as a path on disk."""
    resource = resources.files("ingest") / "defaults" / name
    if isinstance(resource, Path):
        return resource
    return _files.enter_context(resources.as_file(resource))


def default_file(name: str) -> Path:
    """`config/<name>` in the working directory when there is one, else the packaged default."""
    local = LOCAL_CONFIG / name
    return local if local.is_file() else packaged(name)


def checkout() -> Path | None:
    """The source tree this package is imported from (a checkout, an editable install), else
    None (an installed package: its parent is site-packages)."""
    root = Path(__file__).resolve().parents[2]  # ingest/core/settings.py -> the tree
    try:
        ours = 'name = "news-ingest"' in (root / "pyproject.toml").read_text("utf-8")
    except OSError:
        return None
    return root if ours else None


def state_home() -> Path:
    """Where writable state lives: `$NEWS_INGEST_HOME`, else `var/` of the checkout the code runs
    from, else the user's data directory (platformdirs, e.g. ~/.local/share/news-ingest)."""
    if os.environ.get("NEWS_INGEST_HOME"):
        return Path(os.environ["NEWS_INGEST_HOME"]).expanduser()
    root = checkout()
    if root is not None:
        return root / "var"
    return Path(platformdirs.user_data_dir("news-ingest", appauthor=False))


def locate(path: str | Path) -> Path:
    """A file named in the settings: as given when it exists; a `config/<name>` that does not
    (the old defaults said `config/taxonomy.yaml`) is the packaged default of that name."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists():
        return given
    if given.parts[:1] == (LOCAL_CONFIG.name,) and len(given.parts) == 2:
        with contextlib.suppress(OSError):
            ours = packaged(given.name)
            if ours.is_file():
                return ours
    return given


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class RedisSettings(BaseModel):
    model_config = ConfigDict(validate_default=True)  # an empty data_dir means state_home()

    url: str = ""
    prefix: str = "news:"
    embedded_port: int = 6399
    data_dir: str = ""  # empty: <state_home()>/valkey

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: str) -> str:
        return str(Path(value).expanduser()) if value else str(state_home() / "valkey")


class HostLimit(BaseModel):
    rate: float = 1.0  # requests per second; 0 = no spacing
    inflight: int = 2  # requests in flight at once, across all pollers; 0 = no limit


class PollSettings(BaseModel):
    min_interval: float = 120
    max_interval: float = 21600
    default_interval: float = 900
    max_backoff: float = 86400
    concurrency: int = 50
    lease: float = 300
    max_items: int = 200
    parse_threads: int = 2  # feed documents are parsed in these threads, off the event loop
    queue_high_water: int = 5000
    lag_high_water: int = 100_000
    fetch_claim: int = 600  # an item claimed for fetching by a poller that died is free after this
    host_rate: float = 1.0
    host_inflight: int = 2
    host_limits: dict[str, HostLimit] = {}
    stale_factor: float = 4
    # A host whose next turn is further away than this (a long Retry-After) is not waited for:
    # the feed or item is deferred and comes back when the host is free.
    max_host_wait: float = 30


class FetchSettings(BaseModel):
    model_config = ConfigDict(validate_default=True)  # an empty user_agent means ours

    allow: Annotated[list[str], NoDecode] = []
    max_bytes: int = 10_000_000
    timeout: float = 20
    connect_timeout: float = 10
    max_redirects: int = 5
    user_agent: str = ""  # empty: news-ingest/<version> (+project URL)
    robots: bool = True  # obey robots.txt for article pages (feeds are exempt)
    robots_ttl: float = 86400
    robots_retry: float = 600  # robots.txt 5xx/429/unreachable: articles wait, asked again then

    _split = field_validator("allow", mode="before")(_split_commas)

    @field_validator("user_agent")
    @classmethod
    def _user_agent(cls, value: str) -> str:
        return value or default_user_agent()


def default_user_agent() -> str:
    from ingest import __version__

    return f"news-ingest/{__version__} (+{PROJECT_URL})"


class WorkerSettings(BaseModel):
    count: int = 2
    batch_size: int = 8
    job_timeout: int = 300


class RunSettings(BaseModel):
    shutdown_grace: float = 10  # seconds in-flight polls get after SIGTERM/SIGINT, then cancelled
    server_wait: float = 20  # `poll`/`worker` without a URL wait this long for `news-ingest server`
    # `run --once` waits this long for deferred feeds and items (a host's Retry-After, robots.txt
    # unavailable, a busy host), then stops and reports what is left (exit status 3).
    once_deadline: float = 180


class MetricsSettings(BaseModel):
    port: int = 9108  # NEWS_INGEST_METRICS_PORT; 0 turns the endpoint of `run` off
    host: str = "0.0.0.0"


class ExtractSettings(BaseModel):
    min_chars: int = 250
    include_tables: bool = True
    max_tags: int = 200_000  # more '<' than this: `too_complex` before extraction (0: no cap)
    cpu_limit: float = 10  # CPU seconds one page may take to extract (0: no limit)


class TemplateSettings(BaseModel):
    """Site template learning (workers/template.py): lines seen on many articles of one site."""

    enabled: bool = True
    min_articles: int = 4  # drop a line seen on at least this many OTHER articles of the site
    window_days: float = 8  # counts older than this are forgotten (whole generations at a time)
    generations: int = 4  # the window is cut in this many generations (the decay step)
    max_lines: int = 128  # line fingerprints per site per generation (the memory bound)
    max_stories: int = 512  # articles counted per site per generation
    max_sites: int = 10000  # sites learned at once (the total bound); others are not learned

    @property
    def generation_seconds(self) -> int:
        return max(1, int(self.window_days * 86400 / max(1, self.generations)))


class DedupSettings(BaseModel):
    window_days: float = 30
    drop_near_duplicates: bool = True
    simhash_max_distance: int = 3  # corrections: a text that moved more bits than this changed
    near_min_bands: int = 2  # near-copies: MinHash bands shared ...
    near_max_distance: int = 14  # ... or one band and at most this many SimHash bits apart
    near_min_shingles: int = 20  # a story this short (in its own shingles) is no near-copy
    shards: int = 4096  # hashes per seen-state generation

    @property
    def window_s(self) -> int:
        """The window in seconds: the TTL of every mark that lives one window (in-flight claims,
        outcomes), so the poller and the workers never compute it apart."""
        return int(self.window_days * 86400)


class ClassifySettings(BaseModel):
    model_config = ConfigDict(validate_default=True)  # an empty taxonomy means the default one

    taxonomy: str = ""  # empty: config/taxonomy.yaml in the working directory, else the packaged one
    max_topics: int = 3
    min_score: float = 0.15
    languages: Annotated[list[str], NoDecode] = []
    model: str = ""  # a model from `news-ingest classify train`; empty: the lexicon only
    model_trust: float = 0.5  # below this probability of its first topic, the lexicon decides
    # learning from the stream (workers/learn.py): a self-labelled model per language
    learn: bool = True
    learn_archive: int = 5000  # texts kept per language (Redis, ~1.3 KB each: bench/learn.py)
    learn_min_texts: int = 300  # a language's first model needs this many
    learn_every: float = 86400  # refit a language's model when it is this old (seconds)
    learn_check: float = 3600  # the poller enqueues a refit job at most this often
    learn_gate_size: int = 200  # held-back texts the lexicon is surest of, compared
    learn_min_agreement: float = 0.6  # a first model must agree with the lexicon this often
    learn_tolerance: float = 0.02  # a refit may agree this much less than the installed model
    local_labels: bool = True  # topics also carry label_local in the article's language

    _split = field_validator("languages", mode="before")(_split_commas)

    @field_validator("taxonomy")
    @classmethod
    def _taxonomy(cls, value: str) -> str:
        return str(locate(value)) if value else str(default_file("taxonomy.yaml"))

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return str(locate(value)) if value else value


class StreamSettings(BaseModel):
    maxlen: int = 1_000_000
    queue: str = "articles"
    route_topics: bool = False  # also to <prefix>articles:topic:<code>, per assigned topic
    route_languages: bool = False  # also to <prefix>articles:lang:<code>
    trace_days: float = 3.0  # per-article traces for `explain` (1-2 KB each); 0 keeps none

    @property
    def trace_ttl(self) -> int:
        """Seconds a trace is kept (0: none)."""
        return int(self.trace_days * 86400)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWS_INGEST_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    redis: RedisSettings = Field(default_factory=RedisSettings)
    poll: PollSettings = Field(default_factory=PollSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    template: TemplateSettings = Field(default_factory=TemplateSettings)
    classify: ClassifySettings = Field(default_factory=ClassifySettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        chosen = _config_file.get()
        if chosen is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=chosen))
        # the packaged file last: a settings file need only name what it changes
        sources.append(TomlConfigSettingsSource(settings_cls, toml_file=packaged("settings.toml")))
        return tuple(sources)

    def redis_url(self) -> str:
        """The configured server, or "" for the embedded one."""
        return self.redis.url or os.environ.get("REDIS_URL", "")

    def with_overrides(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some fields of some sections replaced (flags beat everything)."""
        update: dict[str, Any] = {}
        for name, fields in sections.items():
            clean = {k: v for k, v in fields.items() if v is not None}
            if clean:
                update[name] = getattr(self, name).model_copy(update=clean)
        return self.model_copy(update=update)


def config_file(config: str | None = None) -> Path | None:
    """The settings file in force: `config`, else `$NEWS_INGEST_CONFIG`, else
    `config/settings.toml` in the working directory, else none (the packaged defaults alone)."""
    given = config or os.environ.get("NEWS_INGEST_CONFIG", "")
    if given:
        return Path(given).expanduser()
    local = LOCAL_CONFIG / "settings.toml"
    return local if local.is_file() else None


# the file `load` reads, for settings_customise_sources (pydantic-settings takes no argument there)
_config_file: ContextVar[Path | None] = ContextVar("news_ingest_config_file", default=None)


def load(config: str | None = None) -> Settings:
    """Resolve the settings once: defaults, file, environment (no side effect on the process:
    callers hand the result to every role they start)."""
    path = config_file(config)
    if path is not None and not path.is_file():
        raise ValueError(f"no such settings file: {path}")
    token = _config_file.set(path)
    try:
        return Settings()
    finally:
        _config_file.reset(token)
