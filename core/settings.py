"""Settings come from CRM_* environment variables; anything unknown or malformed stops start-up."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar
from urllib.parse import urlparse

ENVIRONMENTS = ("development", "test", "production")
DEFAULT_DATABASE_URL = "sqlite://var/crm.sqlite3"
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-in-production"
# Read by the test suite and CI only; accepted so that they do not stop start-up.
TEST_ONLY_VARIABLES = frozenset({"CRM_TEST_DATABASE_URL", "CRM_TEST_REDIS_URL"})


class SettingsError(Exception):
    """A setting is unknown or malformed; the message is one line meant for the operator."""


Section = TypeVar("Section")
_SECTIONS: list[type] = []


def section(cls: type[Section]) -> type[Section]:
    """Declares a domain's settings, next to the code that reads them: a frozen dataclass with defaults,
    each field read from CRM_<FIELD NAME>, and an optional `check()` that raises SettingsError."""
    if any(f"CRM_{f.name.upper()}" in _known_names() for f in fields(cls)):
        raise ValueError(f"{cls.__name__} declares a setting that exists already")
    _SECTIONS.append(cls)
    return cls


def sections() -> list[type]:
    """Every domain's settings section (the domains' services modules declare them when imported)."""
    from core import domains

    domains.modules("services")
    return list(_SECTIONS)


def _known_names() -> set[str]:
    own = {f"CRM_{f.name.upper()}" for f in fields(Settings) if f.name != "sections"}
    return own | {f"CRM_{f.name.upper()}" for s in _SECTIONS for f in fields(s)}


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: str = field(default="", repr=False)
    admin_username: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    token_ttl_minutes: int = 12 * 60
    worker_threads: int = 4
    # How long an embedded worker thread waits for a message before it looks whether to stop: it bounds how long
    # stopping the app takes (twice this), at the cost of a wake-up per thread this often when idle.
    worker_poll_ms: int = 100
    # SIGTERM: how long `crm serve` lets in-flight requests finish (then cancels them) and `crm worker` lets the
    # actor runs in progress finish (then exits; Redis gives their messages to another worker) before stopping.
    shutdown_grace_seconds: int = 30
    log_level: str = "INFO"
    log_json: bool = True
    # Browser origins allowed to call the API from scripts (CORS), comma-separated; none by default.
    cors_origins: str = ""
    # When set, GET /metrics needs `Authorization: Bearer <this token>`.
    metrics_token: str | None = field(default=None, repr=False)
    # Peers (comma-separated addresses or CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed; none
    # by default, so a client cannot choose the address that rate limits and the audit log see.
    trusted_proxies: str = ""
    # Each domain's own settings, by section class (see `section`); `of()` gives the defaults when absent.
    sections: Mapping[type, Any] = field(default_factory=dict, repr=False)

    def of(self, section_class: type[Section]) -> Section:
        return self.sections.get(section_class) or section_class()

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(n.strip(), strict=False) for n in self.trusted_proxies.split(",") if n.strip()
        )

    @property
    def embedded_broker(self) -> bool:
        """No Redis configured: the broker and its workers live inside the API process."""
        return self.redis_url is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        owners: dict[type, dict[str, object]] = {cls: {}, **{s: {} for s in sections()}}
        known = {f"CRM_{f.name.upper()}": (owner, f) for owner in owners for f in fields(owner) if f.name != "sections"}
        for name, raw in environ.items():
            if not name.startswith("CRM_") or name in TEST_ONLY_VARIABLES:
                continue
            if name not in known:
                raise SettingsError(f"unknown setting {name}; known settings: {', '.join(sorted(known))}")
            owner, setting = known[name]
            owners[owner][setting.name] = _parse(name, setting.type, raw)
        values = owners.pop(cls)
        return cls(**values, sections={s: s(**v) for s, v in owners.items()}).validated()

    def validated(self) -> Settings:
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"CRM_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        scheme = urlparse(self.database_url).scheme
        if scheme not in ("sqlite", "postgres", "postgresql"):
            raise SettingsError(f"CRM_DATABASE_URL must be a sqlite:// or postgres:// URL, not {self.database_url!r}")
        if self.redis_url is not None and urlparse(self.redis_url).scheme not in ("redis", "rediss"):
            raise SettingsError(f"CRM_REDIS_URL must be a redis:// or rediss:// URL, not {self.redis_url!r}")
        if (self.admin_username is None) != (self.admin_password is None):
            raise SettingsError("CRM_ADMIN_USERNAME and CRM_ADMIN_PASSWORD must be set together")
        if self.admin_password is not None and len(self.admin_password) < 12:
            raise SettingsError("CRM_ADMIN_PASSWORD must be at least 12 characters")
        if self.token_ttl_minutes < 1:
            raise SettingsError("CRM_TOKEN_TTL_MINUTES must be at least 1")
        if not 1 <= self.worker_threads <= 64:
            raise SettingsError("CRM_WORKER_THREADS must be between 1 and 64")
        if not 5 <= self.worker_poll_ms <= 5_000:
            raise SettingsError("CRM_WORKER_POLL_MS must be between 5 and 5000")
        if not 0 <= self.shutdown_grace_seconds <= 3600:
            raise SettingsError("CRM_SHUTDOWN_GRACE_SECONDS must be between 0 and 3600")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"CRM_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}")
        if self.production and len(self.secret_key) < 32:
            raise SettingsError("CRM_SECRET_KEY must be set to at least 32 characters in production")
        for origin in self.cors_origin_list:
            parsed = urlparse(origin)
            if origin == "*" or parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path:
                raise SettingsError(f"CRM_CORS_ORIGINS must list origins like https://crm.example.com, not {origin!r}")
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise SettingsError("CRM_METRICS_TOKEN must be at least 16 characters")
        try:
            self.trusted_networks  # noqa: B018 (parses the setting)
        except ValueError as exc:
            raise SettingsError(f"CRM_TRUSTED_PROXIES must be comma-separated addresses or CIDRs: {exc}") from None
        for value in self.sections.values():
            if hasattr(value, "check"):
                value.check()
        # Outside production a fixed key keeps tokens valid across the API processes of one machine.
        return replace(self, secret_key=self.secret_key or DEVELOPMENT_SECRET_KEY, log_level=self.log_level.upper())


def _parse(name: str, kind: object, raw: str) -> object:
    kind = str(kind)
    if "int" in kind:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if "bool" in kind:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
    if raw == "" and "None" in kind:
        return None
    return raw


_active: Settings | None = None


def use(settings: Settings | None) -> None:
    """The settings this process runs with (the app's lifespan, a worker, the command line set them)."""
    global _active
    _active = settings


def active() -> Settings:
    """The settings this process runs with, for code that is not handed them (a service deep in a call);
    read from the environment when no process set them."""
    return _active if _active is not None else Settings.from_env()
