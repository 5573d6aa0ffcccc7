"""Settings from the environment and `.env`, validated once at start-up."""

from __future__ import annotations

import re
import sys
from datetime import time
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.localtime import district_timezone

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DISTRICT_DIR = REPO_ROOT / "district"
OFFICIAL_API_URL = "https://api.telegram.org"


class Settings(BaseSettings):
    """Every key is documented in `.env.example`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # repr=False: a printed or logged Settings never shows the token or the webhook secret.
    bot_token: str = Field(
        default="", description="Token from @BotFather; empty: local emulator", repr=False
    )
    bot_username: str = ""
    telegram_api_url: str = OFFICIAL_API_URL
    database_url: str = "sqlite+aiosqlite:///data/suipai.db"
    redis_url: str | None = None
    district_dir: Path = SAMPLE_DISTRICT_DIR
    # No longer where the time zone is set (that is district.toml's `timezone`: `District.tz`);
    # an old .env that still names it starts as long as it agrees with the district.
    timezone: str | None = None
    digest_time: time = time(8, 0)
    media_dir: Path = Path("data/media")
    log_level: str = "INFO"
    max_photo_bytes: int = 20 * 1024 * 1024
    max_photo_pixels: int = 50_000_000
    # PNG, WebP and HEIC are decoded whole, JPEG at a fraction:
    # bot/domain/photos.py MAX_NON_JPEG_PIXELS.
    max_photo_pixels_non_jpeg: int = Field(default=25_000_000, ge=1)
    # Photos decoded at once in one process, each up to a few hundred MB at its peak.
    photo_decoders: int = Field(default=2, ge=1, le=32)
    sandbox_port: int = Field(default=8080, ge=0, le=65535)
    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, repr=False)
    # Telegram waits about a minute for a webhook's answer; an update still in hand by then is
    # answered 503 (Telegram delivers it again), never 200 before it is applied.
    webhook_answer_s: float = Field(default=55.0, gt=0, le=60)
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8088, ge=0, le=65535)
    # A sender renews its claims while it holds messages; the lease only runs out for one that
    # stopped (its process died, or it lost the database). Above DB_RETRY_S: a sent message's
    # record waits that long for the database, and a lapsed claim lets another sender resend.
    outbox_lease_s: int = Field(default=150, ge=1, le=3600)
    db_retry_s: float = Field(default=120.0, ge=0, le=3600)
    # Above an album's 10 photos: one person's updates are handled one after another, each
    # holding its turn, and an album must not take every turn.
    update_concurrency: int = Field(default=16, ge=1, le=1000)
    classifier_model: Path | None = None
    classifier_threshold: float = Field(default=0.6, ge=0.0, le=1.0)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, v: str) -> str:
        v = v.strip()
        if v and (":" not in v or not v.split(":", 1)[0].isdigit()):
            raise ValueError("must look like 123456789:AA... (the token @BotFather gave you)")
        return v

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str) -> str:
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (async drivers)"
            )
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None and v.strip() == "":
            return None
        if v is not None and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @field_validator("timezone", mode="before")
    @classmethod
    def _tz(cls, v: object, info: ValidationInfo) -> object:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if not isinstance(v, str):
            raise ValueError("must be an IANA time zone such as Asia/Shanghai")
        try:
            ZoneInfo(v.strip())
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as Asia/Shanghai") from exc
        district_dir = info.data.get("district_dir", SAMPLE_DISTRICT_DIR)
        zone = district_timezone(district_dir).key
        if v.strip() != zone:
            raise ValueError(
                f"the district's time zone is {zone} (timezone in {district_dir}/district.toml) "
                "and that is the one used: remove TIMEZONE, or change the district file"
            )
        return v.strip()

    @field_validator("digest_time", mode="before")
    @classmethod
    def _digest_time(cls, v: object) -> object:
        if isinstance(v, str):
            match = re.fullmatch(r"\s*([01]?\d|2[0-3]):([0-5]\d)\s*", v)
            if match is None:
                raise ValueError("must be a local time HH:MM (24-hour clock), such as 08:00")
            return time(int(match[1]), int(match[2]))
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return v

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_url(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():
            return None
        local = ("http://127.0.0.1", "http://localhost")  # a local Bot API server or emulator
        if isinstance(v, str) and not v.startswith(("https://", *local)):
            raise ValueError("must be the public https:// address Telegram will post updates to")
        return v

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _webhook_secret(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():
            return None
        if isinstance(v, str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", v):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return v

    def require_webhook_secret(self) -> str:
        """Webhook mode accepts updates only with the secret Telegram echoes in a header."""
        if not self.webhook_url:
            raise ValueError("Setting WEBHOOK_URL is missing: webhook mode needs the public URL.")
        if not self.webhook_secret:
            raise ValueError(
                "Setting WEBHOOK_SECRET is missing: webhook mode refuses to start without it "
                "(1-256 characters of A-Z, a-z, 0-9, _ and -)."
            )
        return self.webhook_secret

    @field_validator("classifier_model", mode="before")
    @classmethod
    def _model(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @property
    def uses_emulator(self) -> bool:
        """No token given: the bot talks to the local Telegram emulator instead."""
        return not self.bot_token


def describe_error(exc: ValidationError) -> str:
    """One line per bad setting, naming the environment variable and how to fix it."""
    lines = []
    for err in exc.errors():
        key = str(err["loc"][0]).upper() if err["loc"] else "?"
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"Setting {key} is invalid: {msg}. Fix it in .env or the environment.")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; exits with a clear message when one is malformed."""
    try:
        return Settings()
    except ValidationError as exc:
        print(describe_error(exc), file=sys.stderr)
        raise SystemExit(2) from None
