"""The one typed settings object of a Dialguard installation.

Read once at the edge (the CLI) from `DIALGUARD_*` environment variables and
passed down; no module below `api` reads the environment. The names of the
documented variables are a contract with scripts outside the repository.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.web.proxies import Network, parse_networks
from dialer.edge.dispatch import DEFAULT_PORT_BASE, MAX_WORKERS, RTP_BASE
from dialer.policy import PRESETS
from dialer.sip.media_policy import DEFAULT_SRTP, SrtpPolicy
from recording.storage_rules import parse_client_retention, retention_classes

#: REQUIREMENTS §3: recordings are kept at least two years; a client may only ask for more.
MIN_RETENTION_DAYS = 730
#: The longest any retention may run unless a setting says otherwise: ten years.
DEFAULT_MAX_RETENTION_DAYS = 3650
#: The parts of Dialguard a host can run (DIALGUARD_ROLE); a small site runs them all.
ROLES = ("edge", "dialer", "transcribe", "console")


def default_data_dir() -> Path:
    """Where a user's Dialguard keeps its data when DIALGUARD_DATA_DIR is not set.

    One place per user ($XDG_DATA_HOME/dialguard, else ~/.local/share/dialguard),
    never the directory a command happens to run in: `dialguard qa check` run
    from anywhere must not leave a database and a model copy behind it. A site
    sets DIALGUARD_DATA_DIR (e.g. /var/lib/dialguard); `make run` sets ./data.
    """
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "dialguard"
    try:
        return Path.home() / ".local" / "share" / "dialguard"
    except RuntimeError:  # no HOME and no passwd entry: nowhere per-user to go
        return Path("data").resolve()


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
        default_factory=default_data_dir,
        description="Where the SQLite database, embedded S3 data, spool and keys live; "
        "default $XDG_DATA_HOME/dialguard (~/.local/share/dialguard).",
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
        default=0,
        ge=0,
        le=256,
        description="Dialer worker processes behind the SIP front; each bridges 2 calls "
        "(pjsua2 carries 4 legs a process). 0 or auto: sized to the host's cores and memory.",
    )
    dialer_port_base: int = Field(
        default=DEFAULT_PORT_BASE,
        ge=1024,
        le=RTP_BASE - MAX_WORKERS,
        description="SIP port (UDP and TCP) of dialer worker 0; worker i listens on base + i, "
        "the ports the edge's dispatcher list names. Below the RTP range (20000 up).",
    )
    edge_secret: SecretStr | None = Field(
        default=None,
        description="Hex key the SIP edge marks the INVITEs it authenticated with; the same "
        "on edge and dialer hosts. Empty: dialguard up makes one per run (one host).",
    )
    edge_addresses: str = Field(
        default="",
        description="IP addresses the SIP edge sends from, comma-separated; dialer workers "
        "take calls from nowhere else. Empty: DIALGUARD_SIP_HOST. On a dialer host, the "
        "first is also where its workers send click-to-call INVITEs (port DIALGUARD_SIP_PORT).",
    )
    role: str = Field(
        default="all",
        description="What `dialguard up` runs on this host, comma-separated: edge (Kamailio), "
        "dialer (workers, recording uploader, carrier announcements), transcribe "
        "(transcription and QA workers), console (web console and API, webhooks); all: "
        "every part on one host.",
    )
    dialer_hosts: str = Field(
        default="",
        description="IP addresses of the dialer hosts whose workers the edge dispatches to, "
        "comma-separated, each running DIALGUARD_DIALER_WORKERS workers from "
        "DIALGUARD_DIALER_PORT_BASE. Empty: DIALGUARD_SIP_HOST (edge and workers on one host).",
    )
    sip_digest: str = Field(
        default="MD5,SHA-256",
        pattern=r"^(MD5|SHA-256)(,(MD5|SHA-256))?$",
        description="Digest algorithms offered to softphones, in order; some (SIPp among "
        "them) answer only the first challenge, so MD5 leads by default.",
    )
    srtp: str = Field(
        default=DEFAULT_SRTP,
        description="Encrypted media (SRTP, SDES keys) between softphones and dialer workers, "
        "per softphone transport: optional (SRTP when offered, plain RTP allowed) or "
        "required (plain RTP refused, 488), e.g. udp=optional,tcp=optional,tls=required; "
        "one word sets every transport; off: no SRTP at all.",
    )
    sip_realm: str = Field(
        default="dialguard",
        pattern=r"^[A-Za-z0-9.-]{1,64}$",
        description="Digest realm agents' softphones authenticate in; changing it "
        "invalidates every SIP password.",
    )
    sip_tls_port: int = Field(
        default=5061, ge=1, le=65535, description="SIP over TLS port of the Kamailio edge."
    )
    sip_tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate the edge presents on the TLS port; empty: a self-signed "
        "one made in DATA_DIR/edge at first start (its fingerprint is printed).",
    )
    sip_tls_key: Path | None = Field(
        default=None, description="PEM private key of DIALGUARD_SIP_TLS_CERT."
    )
    edge_rpc_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the edge's JSON-RPC (bans) on 127.0.0.1; 0: a free one.",
    )
    edge_ban_flood_requests: int = Field(
        default=64,
        ge=4,
        description="Requests a source may send the edge in 2 s before it is banned as a flood; "
        "16 times as many from an address an agent logged in from within the hour (a floor "
        "behind NAT).",
    )
    edge_ban_flood_s: int = Field(
        default=60,
        ge=5,
        description="Seconds a flooding source stays banned (at least 5: pike's own block "
        "lasts 4 s after the flood).",
    )
    edge_ban_login_failures: int = Field(
        default=5,
        ge=1,
        description="Failed logins of one account from one source before that pair is banned.",
    )
    edge_ban_account_failures: int = Field(
        default=20,
        ge=1,
        description="Failed logins of one account from all sources after which every further "
        "failing source is banned for that account at its first failure.",
    )
    edge_ban_source_failures: int = Field(
        default=30,
        ge=1,
        description="Failed logins from one source, any account, before the source is banned "
        "(accounts that logged in from it keep working).",
    )
    edge_ban_login_s: int = Field(
        default=300, ge=1, description="Seconds a login ban lasts, and failures are counted."
    )

    policy_preset: str = Field(
        default="cn-default",
        description="Call policy preset: cn-default, cn-workdays or us-regf.",
    )

    language: str | None = Field(
        default=None,
        pattern=r"^(zh_CN|en)$",
        description="The console's and the API's language for a reader whose profile and "
        "browser name none we speak: zh_CN or en. Unset: zh_CN on a site using a cn-* call "
        "policy preset, else en.",
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
    retention_max_days: int = Field(
        default=DEFAULT_MAX_RETENTION_DAYS,
        ge=MIN_RETENTION_DAYS,
        le=36500,
        description="Longest retention any recording may be given, in days after it was "
        "recorded (an admin's extension included); a legal hold is the way past it.",
    )
    client_retention_max: str = Field(
        default="",
        description="A lower maximum for some clients, in days, e.g. bank-a=1825; each at "
        "least that client's retention.",
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="Key of the audit log's MACs (32 bytes, mode 0600, created at first "
        "start); empty means DATA_DIR/keys/audit-key.",
    )
    audit_anchor_interval: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="Seconds between anchors of the audit chain's head in WORM storage "
        "(written only when the log has grown, and at shutdown).",
    )
    trusted_proxies: str = Field(
        default="",
        description="Reverse proxies whose X-Forwarded-For (and X-Forwarded-Proto) is "
        "believed, comma-separated addresses or CIDR blocks, e.g. 10.0.0.5,10.1.0.0/16; "
        "empty: the peer's address is the source the login limits and the audit log count.",
    )
    api_docs: bool = Field(
        default=True,
        description="Serve the API docs at /docs (from Dialguard's own assets); turn off in "
        "production if they should not be browsable. /openapi.json stays.",
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
    allow_vanity_numbers: bool = Field(
        default=False,
        description="Dial letters in a number as keypad digits (1-800-FLOWERS); off: "
        "letters in a number are refused as a data error.",
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
        description="Windows decoded together (both parties' in one pass): -1 is 8 on a "
        "CPU and 16 on a GPU, 0 decodes window after window.",
    )
    whisper_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="CTranslate2 threads per transcription worker: 0 shares the host's cores "
        "among the workers (at least one each).",
    )
    whisper_beam: int = Field(
        default=5,
        ge=1,
        le=10,
        description="Beam size of batched decoding (window after window uses 5): 5 hears "
        "best; 1 (greedy) transcribes faster and hears less.",
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

    # --- a first call without a carrier (issue 14: the test carrier) ---
    test_carrier: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="The built-in test carrier, a trunk on 127.0.0.1 that answers every call "
        "with a short spoken debtor line: auto (on when no trunk is set and SIP listens on "
        "loopback), on, or off (production).",
    )
    test_carrier_language: Literal["en", "zh"] = Field(
        default="en",
        description="The test carrier's line: en, on every site, or zh (espeak-ng's "
        "Mandarin: robotic, and Whisper transcribes it as nonsense).",
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

    @field_validator("srtp")
    @classmethod
    def _srtp_policy(cls, value: str) -> str:
        return str(SrtpPolicy.parse(value))  # canonical: "required", "udp=optional,..."

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

    @field_validator(
        "announcement_phrases", "audit_key_file", "sip_tls_cert", "sip_tls_key", mode="before"
    )
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

    @field_validator("retention_max_days")
    @classmethod
    def _max_at_least_retention(cls, value: int, info: ValidationInfo) -> int:
        longest = max(
            [
                info.data.get("retention_days", MIN_RETENTION_DAYS),
                *parse_client_retention(
                    info.data.get("client_retention", ""), MIN_RETENTION_DAYS
                ).values(),
            ]
        )
        if value < longest:
            raise ValueError(
                f"the maximum retention ({value} days) is below a retention in use ({longest})"
            )
        return value

    @field_validator("client_retention_max")
    @classmethod
    def _client_max(cls, value: str, info: ValidationInfo) -> str:
        site_max = info.data.get("retention_max_days", DEFAULT_MAX_RETENTION_DAYS)
        kept = parse_client_retention(info.data.get("client_retention", ""), MIN_RETENTION_DAYS)
        for client, days in parse_client_retention(value, MIN_RETENTION_DAYS).items():
            if days > site_max:
                raise ValueError(
                    f"{client}'s maximum ({days} days) is above DIALGUARD_RETENTION_MAX_DAYS"
                )
            if days < kept.get(client, info.data.get("retention_days", MIN_RETENTION_DAYS)):
                raise ValueError(f"{client}'s maximum ({days} days) is below its retention")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def client_retention_max_map(self) -> dict[str, int]:
        return parse_client_retention(self.client_retention_max, MIN_RETENTION_DAYS)

    def max_retention_days(self, client_id: str | None) -> int:
        """The longest retention a recording of `client_id` may be given."""
        if client_id is None:
            return self.retention_max_days
        return self.client_retention_max_map.get(client_id, self.retention_max_days)

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

    @property
    def effective_audit_key_file(self) -> Path:
        return self.audit_key_file or self.data_dir / "keys" / "audit-key"

    @field_validator("edge_secret")
    @classmethod
    def _edge_secret_hex(cls, value: SecretStr | None) -> SecretStr | None:
        # Kamailio's config carries it as a literal string: hex keeps it one safe token.
        if value is None or not value.get_secret_value():
            return None
        if re.fullmatch(r"[0-9a-fA-F]{32,128}", value.get_secret_value()) is None:
            raise ValueError("must be 32 to 128 hex digits, e.g. from: openssl rand -hex 32")
        return value

    @field_validator("dialer_port_base")
    @classmethod
    def _workers_clear_of_sip(cls, value: int, info: ValidationInfo) -> int:
        sip = info.data.get("sip_port")
        if isinstance(sip, int) and value <= sip < value + MAX_WORKERS:
            raise ValueError(
                f"DIALGUARD_SIP_PORT {sip} falls among the dialer workers' ports "
                f"({value} to {value + MAX_WORKERS - 1}); move one of them"
            )
        return value

    @property
    def edge_address_set(self) -> frozenset[str]:
        """Where the SIP edge sends from: the listed addresses, else the SIP host."""
        return frozenset(_addresses(self.edge_addresses) or (self.sip_host,))

    @field_validator("role")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        named = [part.strip().lower() for part in value.split(",") if part.strip()]
        unknown = [name for name in named if name not in (*ROLES, "all")]
        if not named or unknown:
            raise ValueError(
                f"{', '.join(unknown) or 'nothing'} is not a role: name one or more of "
                f"{', '.join(ROLES)}, or all"
            )
        return ",".join(named)

    @property
    def roles(self) -> frozenset[str]:
        """The parts this host runs (`all` is every one)."""
        named = frozenset(self.role.split(","))
        return frozenset(ROLES) if "all" in named else named

    @field_validator("dialer_hosts", "edge_addresses")
    @classmethod
    def _ip_addresses(cls, value: str) -> str:
        # they go into Kamailio's dispatcher list and the workers' source check: addresses only
        for part in _addresses(value):
            try:
                ipaddress.ip_address(part)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address") from None
        return value

    @property
    def dialer_host_list(self) -> tuple[str, ...]:
        """The dialer hosts the edge dispatches to, in the order given; else this host."""
        return _addresses(self.dialer_hosts) or (self.sip_host,)

    @property
    def edge_proxy(self) -> str:
        """host:port where this host's workers reach the edge (click-to-call INVITEs): this
        host's SIP address with the edge here, else the first edge address listed."""
        listed = _addresses(self.edge_addresses)
        host = self.sip_host if "edge" in self.roles or not listed else listed[0]
        return f"[{host}]:{self.sip_port}" if ":" in host else f"{host}:{self.sip_port}"

    @field_validator("dialer_workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: object) -> object:
        return 0 if isinstance(value, str) and value.strip().lower() in ("auto", "") else value

    @field_validator("test_carrier")
    @classmethod
    def _test_carrier_alone(cls, value: str, info: ValidationInfo) -> str:
        if value == "on" and info.data.get("trunk_uri"):
            raise ValueError(
                "the test carrier and DIALGUARD_TRUNK_URI are both set: calls go to one "
                "carrier; unset the trunk, or set DIALGUARD_TEST_CARRIER=off"
            )
        return value

    @property
    def test_carrier_on(self) -> bool:
        """Whether `dialguard up` runs the test carrier and dials through it.

        `auto` turns it on only for a first look: no trunk configured and the SIP
        front on a loopback address, so nobody outside this machine can reach it.
        """
        if self.test_carrier != "auto":
            return self.test_carrier == "on"
        return self.trunk_uri is None and _loopback(self.sip_host)

    @property
    def test_line_language(self) -> str:
        """The language of the test carrier's line.

        English even on a Chinese site by default: the only offline Chinese voice
        installed (espeak-ng's) is robotic, and Whisper hears nonsense in it
        (shared/FACTS.md; tried through `dialguard up`), so a newcomer's first
        transcript would look broken. `zh` plays it anyway.
        """
        return self.test_carrier_language

    @property
    def test_carrier_dir(self) -> Path:
        """The test carrier's spoken lines, generated at its first start."""
        return self.data_dir / "test-carrier"


def _addresses(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
