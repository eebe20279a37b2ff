"""The one typed settings object of a Dialguard installation.

Read once at the edge (the CLI) from `DIALGUARD_*` environment variables and
passed down; no module below `api` reads the environment. The names of the
documented variables are a contract with scripts outside the repository.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.policy import PRESETS
from recording.storage_rules import parse_client_retention, retention_classes

#: REQUIREMENTS §3: recordings are kept at least two years; a client may only ask for more.
MIN_RETENTION_DAYS = 730


class Settings(BaseSettings):
    """Everything an operator can set. The table in docs/operating.md mirrors this class."""

    model_config = SettingsConfigDict(
        env_prefix="DIALGUARD_",
        extra="ignore",
        validate_default=True,
        frozen=True,
        # A refused secret (webhook, S3) must not reach a log through the error's input.
        hide_input_in_errors=True,
    )

    data_dir: Path = Field(
        default=Path("data"),
        description="Where the SQLite database, embedded S3 data, spool and keys live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty means SQLite at DATA_DIR/dialguard.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/dbname",
    )

    s3_endpoint: str | None = Field(
        default=None,
        description="host:port (or http(s)://host:port) of an S3 with object lock; "
        "empty starts the embedded SeaweedFS.",
    )
    s3_access_key: SecretStr | None = Field(default=None, description="S3 access key.")
    s3_secret_key: SecretStr | None = Field(default=None, description="S3 secret key.")
    s3_secure: bool = Field(default=False, description="Use TLS to reach S3.")
    s3_region: str = Field(default="us-east-1", description="S3 region name.")
    s3_bucket: str = Field(default="dialguard-recordings", description="Primary bucket.")
    s3_replica_bucket: str = Field(
        default="dialguard-recordings-replica", description="Second-copy bucket."
    )
    s3_replica_endpoint: str | None = Field(
        default=None, description="Endpoint of the second copy; empty means the primary's."
    )
    s3_replica_access_key: SecretStr | None = Field(
        default=None, description="Replica access key; empty means the primary's."
    )
    s3_replica_secret_key: SecretStr | None = Field(
        default=None, description="Replica secret key; empty means the primary's."
    )

    key_file: Path | None = Field(
        default=None,
        description="Key-encryption keys for recordings (JSON, mode 0600); "
        "empty means DATA_DIR/keys/recording-keys.json.",
    )

    sip_host: str = Field(default="127.0.0.1", description="Address the SIP front binds.")
    sip_port: int = Field(default=5060, ge=1, le=65535, description="SIP port (UDP and TCP).")
    trunk_uri: str | None = Field(
        default=None, description="Carrier trunk, e.g. sip:carrier.example:5060."
    )
    trunk_username: str | None = Field(
        default=None,
        description="Digest user name the carrier challenges for (401/407), if it wants a login.",
    )
    trunk_password: SecretStr | None = Field(
        default=None, description="The trunk login's password; set both or neither."
    )
    caller_ids: str = Field(
        default="",
        description="Caller IDs presented to debtors, comma-separated E.164, used in turn; "
        "required with a trunk.",
    )
    dialer_workers: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Dialer worker processes behind the SIP front; each bridges 2 calls "
        "(pjsua2 carries 4 legs a process).",
    )
    sip_digest: str = Field(
        default="MD5,SHA-256",
        pattern=r"^(MD5|SHA-256)(,(MD5|SHA-256))?$",
        description="Digest algorithms offered to softphones, in order; some (SIPp among "
        "them) answer only the first challenge, so MD5 leads by default.",
    )
    sip_realm: str = Field(
        default="dialguard",
        pattern=r"^[A-Za-z0-9.-]{1,64}$",
        description="Digest realm agents' softphones authenticate in; changing it "
        "invalidates every SIP password.",
    )

    policy_preset: str = Field(
        default="cn-default",
        description="Call policy preset: cn-default, cn-workdays or us-regf.",
    )

    api_host: str = Field(default="127.0.0.1", description="Address the web console binds.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Web console port.")

    retention_days: int = Field(
        default=MIN_RETENTION_DAYS,
        ge=MIN_RETENTION_DAYS,
        description="Default WORM retention of a recording, in days (at least 730).",
    )
    client_retention: str = Field(
        default="",
        description="Longer retention some clients require, in days, e.g. bank-b=1095; "
        "each length gets its own lifecycle expiry rule in both buckets.",
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="Site time zone (IANA name) for working days."
    )
    workday_end: time = Field(
        default=time(18, 0),
        description="End of the working day (site time): retrieval requests are due by then.",
    )
    phone_region: str = Field(
        default="CN", description="Region for numbers dialed without a country code."
    )

    whisper_model: str = Field(
        default="base",
        description="Whisper model: base (multilingual), tiny.en, or a CTranslate2 directory.",
    )
    whisper_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where transcription runs."
    )
    transcribe_workers: int = Field(
        default=1, ge=0, le=64, description="Transcription worker processes started by `up`."
    )

    whisper_batch: int = Field(
        default=-1,
        ge=-1,
        le=64,
        description="Batch size of faster-whisper's batched pipeline: -1 batches on a GPU "
        "only (16), 0 never, N always.",
    )
    client_languages: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9._@-]{1,64}=[a-z]{2,3})?(,[A-Za-z0-9._@-]{1,64}=[a-z]{2,3})*$",
        description="The language of each client's calls, e.g. bank-a=zh,bank-b=en; "
        "calls of other clients have their language detected.",
    )
    qa_pack: str = Field(
        default="cn-collections",
        description="Rule pack every transcribed call is scored with (cn-collections, "
        "en-collections, or a YAML file).",
    )
    announcement_phrases: Path | None = Field(
        default=None,
        description="YAML file of carrier announcement phrases per status (nonexistent, "
        "suspended, ..., caller_blocked); a status listed replaces the shipped phrases.",
    )
    announcement_language: str = Field(
        default="",
        pattern=r"^([a-z]{2,3})?$",
        description="Language of carriers' early-media announcements, e.g. zh or en; "
        "empty detects it per announcement.",
    )
    require_totp: bool = Field(
        default=True,
        description="Supervisors and admins log in to the console with a one-time code "
        "(TOTP) as well as their password.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every process."
    )
    webhook_url: str | None = Field(
        default=None,
        description="Where call outcomes are pushed (POST, signed); empty pushes nothing.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Key of the webhook's HMAC-SHA256 signatures, at least 16 characters; "
        "required with a webhook URL.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from exc
        return value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r}; use an ISO code such as CN")
        return region

    @field_validator("policy_preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in PRESETS:
            raise ValueError(f"unknown call policy {value!r}; use one of {', '.join(PRESETS)}")
        return value

    @field_validator("trunk_password")
    @classmethod
    def _trunk_login_whole(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if not info.data.get("trunk_username"):
            if value is not None and value.get_secret_value():
                raise ValueError("a trunk password needs DIALGUARD_TRUNK_USERNAME too")
            return None
        if value is None or not value.get_secret_value():
            raise ValueError("DIALGUARD_TRUNK_USERNAME is set: give its password too")
        return value

    @field_validator(
        "database_url", "s3_endpoint", "trunk_uri", "s3_replica_endpoint", "trunk_username"
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("announcement_phrases", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        return value or None  # "" would be read as the current directory

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("the webhook URL must start with http:// or https://")
        return value or None

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        if info.data.get("webhook_url") and len(secret) < 16:
            raise ValueError(
                "required with DIALGUARD_WEBHOOK_URL: at least 16 characters, "
                "shared with the receiver"
            )
        return value if secret else None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dialguard.db').resolve()}"

    @property
    def embedded_s3(self) -> bool:
        return self.s3_endpoint is None

    @property
    def client_retention_map(self) -> dict[str, int]:
        return parse_client_retention(self.client_retention, MIN_RETENTION_DAYS)

    @property
    def retention_classes(self) -> tuple[int, ...]:
        """Every retention length in use; the buckets get one lifecycle rule for each."""
        return retention_classes(self.retention_days, self.client_retention_map)

    @field_validator("client_retention")
    @classmethod
    def _client_retention(cls, value: str) -> str:
        parse_client_retention(value, MIN_RETENTION_DAYS)
        return value

    @property
    def client_language_map(self) -> dict[str, str]:
        pairs = (part.split("=", 1) for part in self.client_languages.split(",") if part)
        return {client: language for client, language in pairs}

    @property
    def caller_id_pool(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.caller_ids.split(",") if part.strip())

    @property
    def calls_dir(self) -> Path:
        """Calls in progress: each party's audio, flushed as it is heard."""
        return self.data_dir / "calls"

    @property
    def number_key_file(self) -> Path:
        return self.data_dir / "keys" / "number-key"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def s3_dir(self) -> Path:
        return self.data_dir / "s3"

    @property
    def effective_key_file(self) -> Path:
        return self.key_file or self.data_dir / "keys" / "recording-keys.json"
