"""Turning settings into the clients the packages take as parameters."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from api.audit.anchors import AnchorStore
from api.audit.chain import with_audit_key
from api.errors import ConfigError
from api.settings import Settings
from dialer.edge.config import EdgeBans, EdgeConfig, first_algorithm
from dialer.edge.dispatch import dispatcher_list, worker_port
from dialer.edge.trust import EdgeTrust
from dialer.numbers import load_or_create_secret
from dialer.policy import preset
from dialer.pool import PoolSize, cgroup_room, mem_available, size_pool
from dialer.sip.config import B2buaConfig
from dialer.sip.digest import Algorithm
from dialer.sip.media_policy import SrtpPolicy
from dialer.site import CallSite
from dialer.workdays import load_calendar
from recording.db.engine import make_engine, session_factory
from recording.embedded_s3 import EmbeddedS3, load_or_create_credentials, running_instance
from recording.keys import FileKeyRing, read_or_create_secret
from recording.storage import S3Target, ensure_bucket, make_client, split_endpoint
from recording.store import Copy


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def storage_targets(settings: Settings) -> tuple[S3Target, S3Target]:
    """(primary, replica) targets; the endpoint must be known (configured or embedded)."""
    if settings.s3_endpoint is None:
        raise ConfigError("no S3 endpoint", hint="start the embedded S3 first (dialguard up)")
    access, secret = _secret(settings.s3_access_key), _secret(settings.s3_secret_key)
    if not access or not secret:
        raise ConfigError(
            "DIALGUARD_S3_ACCESS_KEY and DIALGUARD_S3_SECRET_KEY must be set with "
            "DIALGUARD_S3_ENDPOINT",
            hint="set both, or unset DIALGUARD_S3_ENDPOINT to use the embedded store",
        )
    endpoint, secure = split_endpoint(settings.s3_endpoint, settings.s3_secure)
    primary = S3Target(endpoint, access, secret, settings.s3_bucket, secure, settings.s3_region)
    replica_endpoint, replica_secure = split_endpoint(
        settings.s3_replica_endpoint or settings.s3_endpoint, settings.s3_secure
    )
    replica = S3Target(
        replica_endpoint,
        _secret(settings.s3_replica_access_key) or access,
        _secret(settings.s3_replica_secret_key) or secret,
        settings.s3_replica_bucket,
        replica_secure,
        settings.s3_region,
    )
    if (replica.endpoint, replica.bucket) == (primary.endpoint, primary.bucket):
        raise ConfigError(
            "the replica is the same bucket as the primary: that is one copy, not two",
            hint="set DIALGUARD_S3_REPLICA_BUCKET or DIALGUARD_S3_REPLICA_ENDPOINT",
        )
    return primary, replica


def with_embedded_storage(settings: Settings, endpoint: str, access: str, secret: str) -> Settings:
    """The settings the child processes get once the embedded S3 is up."""
    return settings.model_copy(
        update={
            "s3_endpoint": endpoint,
            "s3_access_key": SecretStr(access),
            "s3_secret_key": SecretStr(secret),
            "s3_secure": False,
        }
    )


def storage_copies(settings: Settings, timeout: float = 30.0) -> tuple[Copy, Copy]:
    primary, replica = storage_targets(settings)
    return (
        Copy("primary", primary, make_client(primary, timeout=timeout)),
        Copy("replica", replica, make_client(replica, timeout=timeout)),
    )


def key_ring(settings: Settings) -> FileKeyRing:
    return FileKeyRing(settings.effective_key_file)


AUDIT_KEY_SIZE = 32


def _read_audit_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) < AUDIT_KEY_SIZE:
        raise ConfigError(
            f"the audit key {path} is {len(key)} bytes, not {AUDIT_KEY_SIZE}",
            hint="restore it from backup; never edit it: the audit log's MACs depend on it",
        )
    return key


def audit_key(settings: Settings, create: bool = True) -> bytes | None:
    """The audit log's MAC key: 32 random bytes in a 0600 file outside the database.

    Created at the first start (`create`); `dialguard audit verify` only reads
    it (None when there is none: MACs are then not checked).
    """
    path = settings.effective_audit_key_file
    try:
        return _read_audit_key(path)
    except FileNotFoundError:
        if not create:
            return None
    read_or_create_secret(path, AUDIT_KEY_SIZE)
    return _read_audit_key(path)


def audit_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the database whose audit entries carry the MAC (every writer of the log)."""
    sessions = session_factory(make_engine(settings.effective_database_url))
    key = audit_key(settings)
    assert key is not None
    return with_audit_key(sessions, key)


def anchor_store(settings: Settings, copies: tuple[Copy, Copy]) -> AnchorStore:
    """Where the audit chain's anchors go: the primary bucket, kept as long as any recording."""
    return AnchorStore(copies[0], retention_days=settings.retention_max_days)


@contextlib.contextmanager
def storage_settings(settings: Settings) -> Iterator[Settings]:
    """Settings with a reachable S3, for commands run beside (or without) `dialguard up`.

    With the embedded store: the one a running Dialguard started, or one
    started for the length of the command.
    """
    if not settings.embedded_s3:
        yield settings
        return
    running = running_instance(settings.s3_dir)
    if running is not None:
        creds = load_or_create_credentials(settings.s3_dir)
        yield with_embedded_storage(settings, running[1], creds.access_key, creds.secret_key)
        return
    with EmbeddedS3(settings.s3_dir) as s3:
        assert s3.credentials is not None
        ready = with_embedded_storage(
            settings, s3.endpoint, s3.credentials.access_key, s3.credentials.secret_key
        )
        for target in storage_targets(ready):
            ensure_bucket(
                make_client(target), target, settings.retention_days, settings.retention_classes
            )
        yield ready


#: The caller ID calls to the test carrier present when DIALGUARD_CALLER_IDS names none;
#: it marks them in every list of calls ("My calls", outcomes) as test calls.
TEST_CALLER_ID = "test-carrier"


def dialer_config(
    settings: Settings, version: str, test_carrier_port: int | None = None
) -> B2buaConfig:
    """The B2BUA's SIP side: where it listens, the trunk, the caller IDs.

    With `test_carrier_port` the trunk is the test carrier on 127.0.0.1 (see
    `dialer.sip.test_carrier`), with no login and `TEST_CALLER_ID` unless
    caller IDs are set.
    """
    if test_carrier_port is not None:
        trunk = f"127.0.0.1:{test_carrier_port}"
        pool: tuple[str, ...] = settings.caller_id_pool or (TEST_CALLER_ID,)
        username: str | None = None
    else:
        if settings.trunk_uri is None:
            raise ConfigError("no trunk", hint="set DIALGUARD_TRUNK_URI")
        pool = settings.caller_id_pool
        if not pool:
            raise ConfigError(
                "a trunk is set but no caller ID to present",
                hint="set DIALGUARD_CALLER_IDS, e.g. +861058000000,+861058000001",
            )
        trunk = settings.trunk_uri.removeprefix("sips:").removeprefix("sip:")
        username = settings.trunk_username
    return B2buaConfig(
        host=settings.sip_host,
        port=settings.sip_port,
        trunk=trunk,
        caller_ids=pool,
        recording_dir=settings.calls_dir,
        secret=os.urandom(32),
        region=settings.phone_region,
        allow_vanity=settings.allow_vanity_numbers,
        realm=settings.sip_realm,
        algorithms=tuple(Algorithm(name) for name in settings.sip_digest.split(",")),
        srtp=SrtpPolicy.parse(settings.srtp),
        edge=(
            edge_trust(settings, settings.edge_secret.get_secret_value())
            if settings.edge_secret is not None
            else None
        ),
        version=version,
        trunk_username=username,
        trunk_password=(
            settings.trunk_password.get_secret_value()
            if settings.trunk_password and username
            else None
        ),
    )


def edge_trust(settings: Settings, secret: str) -> EdgeTrust:
    """What a dialer worker trusts of the SIP edge: its mark's key, the addresses it sends
    from, and where it listens (click-to-call INVITEs go there). `dialguard up` passes the
    secret it made for the run when DIALGUARD_EDGE_SECRET is unset."""
    return EdgeTrust(secret=secret, addresses=settings.edge_address_set, proxy=settings.edge_proxy)


def host_resources() -> tuple[int, int | None]:
    """This host's cores (those this process may run on) and memory free to use, in bytes.

    Memory is MemAvailable, or less where a cgroup (a container) limits it;
    None when neither can be read.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        available = mem_available(Path("/proc/meminfo").read_text())
    except OSError:
        available = None
    try:
        cgroup = Path("/sys/fs/cgroup")
        room = cgroup_room(
            (cgroup / "memory.max").read_text(), (cgroup / "memory.current").read_text()
        )
    except OSError:
        room = None
    if room is not None:
        available = room if available is None else min(available, room)
    return max(1, cores), available


def dialer_pool(settings: Settings) -> PoolSize:
    """How many dialer workers `dialguard up` starts here (DIALGUARD_DIALER_WORKERS, or sized)."""
    cores, available = host_resources()
    return size_pool(cores, available, settings.dialer_workers)


def dialer_site(settings: Settings) -> CallSite:
    """The dialer's database, policy, number key and recording spool."""
    policy = preset(settings.policy_preset)
    return CallSite(
        sessions=session_factory(make_engine(settings.effective_database_url)),
        policy=policy,
        site_tz=ZoneInfo(settings.timezone),
        calendar=load_calendar() if policy.working_days_only else None,
        number_secret=load_or_create_secret(settings.number_key_file),
        spool=settings.spool_dir,
        keys=key_ring(settings),
        retention_days=settings.retention_days,
        client_retention=settings.client_retention_map,
    )


def edge_dir(settings: Settings) -> Path:
    """Where `dialguard up` keeps the edge's config, secrets include, certificate and log."""
    return settings.data_dir / "edge"


def edge_tls_files(settings: Settings) -> tuple[Path, Path]:
    """The edge's certificate and key: the site's, else the self-signed one (made once)."""
    from datetime import UTC, datetime

    from dialer.edge.tls import ensure_self_signed

    if settings.sip_tls_cert is not None and settings.sip_tls_key is not None:
        return settings.sip_tls_cert, settings.sip_tls_key
    if settings.sip_tls_cert is not None or settings.sip_tls_key is not None:
        raise ConfigError(
            "only one of DIALGUARD_SIP_TLS_CERT and DIALGUARD_SIP_TLS_KEY is set",
            hint="set both, or neither for a self-signed certificate",
        )
    return ensure_self_signed(edge_dir(settings) / "tls", settings.sip_host, datetime.now(UTC))


def edge_config(
    settings: Settings,
    rpc_port: int,
    directory: Path | None = None,
    tls: tuple[Path, Path] | None = None,
) -> EdgeConfig:
    """The Kamailio edge from the settings; files under `directory` (default DATA_DIR/edge)."""
    where = directory or edge_dir(settings)
    cert, key = tls or edge_tls_files(settings)
    return EdgeConfig(
        host=settings.sip_host,
        port=settings.sip_port,
        tls_port=settings.sip_tls_port,
        realm=settings.sip_realm,
        algorithm=first_algorithm(settings.sip_digest),
        dispatcher_list=where / "dispatcher.list",
        tls_cert=cert,
        tls_key=key,
        rpc_port=rpc_port,
        secrets_file=where / "kamailio-secrets.cfg",
        bans=EdgeBans(
            flood_requests=settings.edge_ban_flood_requests,
            flood_s=settings.edge_ban_flood_s,
            login_failures=settings.edge_ban_login_failures,
            account_failures=settings.edge_ban_account_failures,
            source_failures=settings.edge_ban_source_failures,
            login_s=settings.edge_ban_login_s,
        ),
    )


def edge_workers_list(settings: Settings, workers: int, hosts: Sequence[str] = ()) -> str:
    """The dispatcher list: `workers` workers on each dialer host (`hosts`, else
    DIALGUARD_DIALER_HOSTS, else this host), from DIALGUARD_DIALER_PORT_BASE on each."""
    ports = [worker_port(settings.dialer_port_base, i) for i in range(workers)]
    return "".join(dispatcher_list(host, ports) for host in hosts or settings.dialer_host_list)


def edge_workers_per_host(settings: Settings) -> int:
    """How many workers the edge lists on each dialer host.

    With the workers here too it is this host's pool; an edge alone cannot
    size another host's pool, so DIALGUARD_DIALER_WORKERS must say it.
    """
    if "dialer" in settings.roles:
        return dialer_pool(settings).workers
    if settings.dialer_workers == 0:
        raise ConfigError(
            "an edge without dialer workers of its own needs DIALGUARD_DIALER_WORKERS",
            hint="set it to the number of workers each dialer host runs (the same number there)",
        )
    return settings.dialer_workers
