"""The embedded SeaweedFS: private credentials, no port collisions, nothing left running."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import psutil
import pytest

from recording.embedded_s3 import EmbeddedS3, pick_ports, running_instance
from recording.errors import EmbeddedStorageError
from recording.storage import ensure_bucket, make_client


def _listening_ports(pid: int) -> set[tuple[str, int]]:
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }


def test_two_instances_run_side_by_side_on_loopback_only(
    seaweed: EmbeddedS3, tmp_path: Path
) -> None:
    with EmbeddedS3(tmp_path / "second") as second:
        assert second.endpoint != seaweed.endpoint
        for s3 in (seaweed, second):
            target = s3.target("side-by-side")
            ensure_bucket(make_client(target), target, 730)
        assert seaweed.pid and second.pid
        first_ports, second_ports = _listening_ports(seaweed.pid), _listening_ports(second.pid)
        assert not {p for _, p in first_ports} & {p for _, p in second_ports}
        assert {ip for ip, _ in first_ports | second_ports} == {"127.0.0.1"}


def test_credentials_are_generated_private_and_reused(tmp_path: Path) -> None:
    root = tmp_path / "s3"
    with EmbeddedS3(root) as s3:
        creds = s3.credentials
        assert running_instance(root) == (s3.pid, s3.endpoint)
        assert stat.S_IMODE(os.stat(root / "state.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / "credentials.json").st_mode) == 0o600
    assert running_instance(root) is None
    with EmbeddedS3(root) as again:
        assert again.credentials == creds
        target = again.target("persisted")
        ensure_bucket(make_client(target), target, 730)


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    s3 = EmbeddedS3(tmp_path / "s3").start()
    pid = s3.pid
    assert pid is not None and psutil.pid_exists(pid)
    s3.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_one_data_dir_serves_one_instance(seaweed: EmbeddedS3) -> None:
    with pytest.raises(EmbeddedStorageError, match="already using"):
        EmbeddedS3(seaweed.root).start()


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedStorageError, match="cannot run SeaweedFS"):
        EmbeddedS3(tmp_path / "s3", weed=tmp_path / "no-such-weed").start()


def test_picked_ports_leave_room_for_grpc_twins() -> None:
    ports = pick_ports()
    everything = set(ports.values()) | {p + 10000 for p in ports.values()}
    assert len(everything) == 2 * len(ports)
    assert all(20000 <= p < 65535 for p in everything)


class _Raced(EmbeddedS3):
    """Another program binds the S3 port after it was picked and before weed binds it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.squatters: list[socket.socket] = []

    def _ports(self) -> dict[str, int]:
        ports = super()._ports()
        if not self.squatters:
            squatter = socket.socket()
            squatter.bind(("127.0.0.1", ports["s3"]))
            squatter.listen()
            self.squatters.append(squatter)
        return ports


def test_a_port_taken_while_starting_is_given_up_for_other_ports(tmp_path: Path) -> None:
    s3 = _Raced(tmp_path / "s3")
    try:
        s3.start()
        (squatter,) = s3.squatters
        assert s3.ports["s3"] != squatter.getsockname()[1]
        assert s3.answers()
        said = (tmp_path / "s3" / "weed.log").read_text()
        assert "address already in use" in said or "is not available" in said
    finally:
        s3.stop()
        for squatter in s3.squatters:
            squatter.close()


def test_a_failed_start_names_weeds_own_reason_not_its_stack_trace(tmp_path: Path) -> None:
    s3 = _Raced(tmp_path / "s3")
    s3_tries = 0

    def taken_every_time() -> dict[str, int]:
        nonlocal s3_tries
        s3_tries += 1
        s3.squatters.clear()  # a new squatter on every try's S3 port
        return _Raced._ports(s3)

    s3._ports = taken_every_time  # type: ignore[method-assign]
    with pytest.raises(EmbeddedStorageError, match=r"already in use|is not available") as refused:
        s3.start()
    assert "goroutine" not in str(refused.value) and ".go:" not in str(refused.value).split()[-1]
    assert s3_tries == 3


def test_ports_the_product_binds_later_are_never_weeds() -> None:
    """The console's port is free while weed starts (the API binds it after): weed must not
    take it, as a service or as a gRPC twin (HTTP port + 10000)."""
    import random as _random

    from recording.embedded_s3 import pick_ports

    rng = _random.Random(7)
    first = pick_ports(_random.Random(7))
    reserved = frozenset({first["s3"], first["master"] + 10000})
    again = pick_ports(rng, reserved=reserved)
    used = {p for port in again.values() for p in (port, port + 10000)}
    assert not used & reserved, (again, reserved)
