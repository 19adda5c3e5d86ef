"""Settings: one typed object read once from the environment.

``huqi serve`` reads them once at start and hands the values on; no other
module reads ``os.environ``.  A missing or malformed setting raises
:class:`SettingsError` with one line that names the variable.
"""
from __future__ import annotations

import hmac
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

ROLES = ("operator", "viewer")


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one line naming the variable."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    token: str
    role: str = "operator"

    @property
    def can_change(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    files_dir: Path
    telegram_token: str | None = None
    telegram_base_url: str | None = None
    telegram_file_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    api_tokens: tuple[ApiToken, ...] = ()
    operator_chat_id: int | None = None
    reminder_days: int | None = None
    sweep_minutes: float = 15.0
    max_file_mb: float = 20.0
    database_url: str | None = None
    cookie_secret: str | None = None        # web chat cookies; None: generated once into the data dir
    public_url: str | None = None           # where users reach this service (web chat link, QR code)
    smtp_url: str | None = None             # e-mail notifications for the web chat
    web_address_rate: int = 600             # web chat requests per minute from one address
    sms_sender: str | None = None           # "package.module:factory" for binding a mobile number by SMS
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def api_enabled(self) -> bool:
        return bool(self.api_tokens)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def api_base(self) -> str:
        host = self.http_host if self.http_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.http_port}"

    def token_named(self, presented: str | None) -> ApiToken | None:
        """The named token equal to ``presented`` (compared in constant time), or None."""
        if not presented:
            return None
        given = presented.encode("utf-8", "surrogatepass")
        found = None
        for t in self.api_tokens:            # compare with every token: no early exit
            if hmac.compare_digest(given, t.token.encode("utf-8")):
                found = t
        return found

    def cli_token(self) -> str | None:
        """The token the CLI presents to the running service (an operator's)."""
        for t in self.api_tokens:
            if t.can_change:
                return t.token
        return None


def _get(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def _num(env: Mapping[str, str], name: str, cast: Callable[[str], T], default: T,
         low: float, high: float) -> T:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not (low <= value <= high):
        raise SettingsError(f"{name}={raw!r} must be between {low:g} and {high:g}")
    return value


def _url(env: Mapping[str, str], *names: str, schemes=("http", "https")) -> str | None:
    raw = _get(env, *names)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.netloc:
        raise SettingsError(f"{names[0]}={raw!r} is not a {'/'.join(schemes)} URL")
    return raw


def _tokens(env: Mapping[str, str]) -> tuple[ApiToken, ...]:
    tokens: list[ApiToken] = []
    single = _get(env, "HUQI_API_TOKEN")
    if single:
        tokens.append(ApiToken("api", single))
    listed = _get(env, "HUQI_API_TOKENS")
    for item in (listed or "").split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise SettingsError("HUQI_API_TOKENS must be name:token[:role] items separated by commas")
        role = parts[2] if len(parts) == 3 else "operator"
        if role not in ROLES:
            raise SettingsError(f"HUQI_API_TOKENS: role {role!r} of {parts[0]!r} must be one of {', '.join(ROLES)}")
        tokens.append(ApiToken(parts[0], parts[1], role))
    for t in tokens:
        if len(t.token) < 16:
            raise SettingsError(f"API token {t.name!r} is shorter than 16 characters")
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise SettingsError("HUQI_API_TOKENS names a token twice")
    return tuple(tokens)


def _cookie_secret(env: Mapping[str, str]) -> str | None:
    raw = _get(env, "HUQI_COOKIE_SECRET")
    if raw is not None and len(raw) < 32:
        raise SettingsError("HUQI_COOKIE_SECRET must be at least 32 characters")
    return raw


def _sms_sender(env: Mapping[str, str]) -> str | None:
    raw = _get(env, "HUQI_SMS_SENDER")
    if raw is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", raw):
        raise SettingsError(f"HUQI_SMS_SENDER={raw!r} must be package.module:factory")
    return raw


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting once; SettingsError (one line) for anything unusable."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(_get(env, "HUQI_DATA_DIR") or "data").resolve()
    files_dir = Path(_get(env, "HUQI_FILES_DIR") or data_dir / "files").resolve()
    webhook_url = _url(env, "HUQI_WEBHOOK_URL", schemes=("https", "http"))
    secret = _get(env, "HUQI_WEBHOOK_SECRET")
    if webhook_url and not secret:
        raise SettingsError("HUQI_WEBHOOK_URL is set but HUQI_WEBHOOK_SECRET is not (1-256 of A-Z a-z 0-9 _ -)")
    if secret is not None and not (1 <= len(secret) <= 256 and all(c.isascii() and (c.isalnum() or c in "_-")
                                                                   for c in secret)):
        raise SettingsError("HUQI_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
    chat = _get(env, "HUQI_OPERATOR_CHAT_ID")
    if chat is not None:
        try:
            chat = int(chat)
        except ValueError:
            raise SettingsError(f"HUQI_OPERATOR_CHAT_ID={chat!r} is not a Telegram chat id (an integer)") from None
    reminder = _get(env, "HUQI_REMINDER_DAYS")
    database_url = _get(env, "HUQI_DATABASE_URL")
    if database_url and urlsplit(database_url).scheme not in ("postgresql", "postgres"):
        raise SettingsError("HUQI_DATABASE_URL must start with postgresql://")
    return Settings(
        data_dir=data_dir,
        files_dir=files_dir,
        telegram_token=_get(env, "HUQI_TELEGRAM_TOKEN", "TELEGRAM_BOT_TOKEN"),
        telegram_base_url=_url(env, "HUQI_TELEGRAM_API_URL", "HUQI_TELEGRAM_BASE_URL"),
        telegram_file_url=_url(env, "HUQI_TELEGRAM_FILE_URL"),
        webhook_url=webhook_url,
        webhook_secret=secret,
        http_host=_get(env, "HUQI_HTTP_HOST") or "127.0.0.1",
        http_port=_num(env, "HUQI_HTTP_PORT", int, 8080, 0, 65535),
        api_tokens=_tokens(env),
        operator_chat_id=chat,
        reminder_days=None if reminder is None else _num(env, "HUQI_REMINDER_DAYS", int, 7, 1, 3650),
        sweep_minutes=_num(env, "HUQI_REMINDER_SWEEP_MINUTES", float, 15.0, 0.01, 24 * 60),
        max_file_mb=_num(env, "HUQI_MAX_FILE_MB", float, 20.0, 0.001, 2000),
        database_url=database_url,
        cookie_secret=_cookie_secret(env),
        public_url=_url(env, "HUQI_PUBLIC_URL"),
        smtp_url=_url(env, "HUQI_SMTP_URL", schemes=("smtp", "smtps")),
        web_address_rate=_num(env, "HUQI_WEB_ADDRESS_RATE", int, 600, 1, 10**7),
        sms_sender=_sms_sender(env),
        env=env,
    )


def data_dir() -> Path:
    """Where cases and drafts live: HUQI_DATA_DIR, default ./data."""
    return _lenient().data_dir


def telegram_token() -> str | None:
    return _lenient().telegram_token


def _lenient() -> Settings:
    """The settings, or for callers that only need the data directory and token when another
    setting is malformed (the terminal chat should still start), those two read alone."""
    try:
        return load_settings()
    except SettingsError:
        env = os.environ
        base = Path(_get(env, "HUQI_DATA_DIR") or "data").resolve()
        return Settings(data_dir=base, files_dir=base / "files",
                        telegram_token=_get(env, "HUQI_TELEGRAM_TOKEN", "TELEGRAM_BOT_TOKEN"))


load_settings_lenient = _lenient


def reminder_days() -> int:
    """Days without news before a reminder: HUQI_REMINDER_DAYS, else routing.yaml's
    no_response_days (huqi's own default, not a legal time limit)."""
    configured = _lenient().reminder_days
    if configured:
        return configured
    from knowledge import knowledge
    from knowledge.routing import no_response_days
    return no_response_days(knowledge())
