"""Worker ports and the dispatcher list the edge loads: fixed, so the edge finds a
restarted worker where it was, and clear of the edge's and the RTP ports."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import Settings
from dialer.edge.dispatch import (
    DEFAULT_PORT_BASE,
    MAX_WORKERS,
    RTP_BASE,
    dispatcher_list,
    worker_port,
)


def test_worker_i_listens_on_base_plus_i() -> None:
    assert [worker_port(5100, i) for i in range(4)] == [5100, 5101, 5102, 5103]
    assert worker_port(DEFAULT_PORT_BASE, MAX_WORKERS - 1) < RTP_BASE
    with pytest.raises(ValueError, match="outside"):
        worker_port(5100, MAX_WORKERS)
    with pytest.raises(ValueError, match="outside"):
        worker_port(5100, -1)


def test_dispatcher_list_names_every_worker_with_its_load_limit() -> None:
    text = dispatcher_list("10.0.0.7", [5100, 5101])
    assert text == (
        "1 sip:10.0.0.7:5100;transport=udp 0 0 duid=10.0.0.7-5100;maxload=2\n"
        "1 sip:10.0.0.7:5101;transport=udp 0 0 duid=10.0.0.7-5101;maxload=2\n"
    )
    assert dispatcher_list("10.0.0.8", [5100], set_id=3).startswith("3 sip:10.0.0.8:5100;")
    assert dispatcher_list("10.0.0.8", []) == ""
    v6 = dispatcher_list("fd00::8", [5100])
    assert v6.startswith("1 sip:[fd00::8]:5100;transport=udp ") and "duid=fd00::8-5100;" in v6


def test_two_hosts_give_distinct_destinations() -> None:
    both = dispatcher_list("127.0.0.2", [5100, 5101]) + dispatcher_list("127.0.0.3", [5100, 5101])
    duids = [line.split("duid=")[1].split(";")[0] for line in both.splitlines()]
    assert len(set(duids)) == 4


def test_port_base_setting_keeps_workers_below_rtp_and_clear_of_sip() -> None:
    assert Settings().dialer_port_base == 5100
    Settings(dialer_port_base=RTP_BASE - MAX_WORKERS)
    with pytest.raises(ValidationError):
        Settings(dialer_port_base=RTP_BASE - MAX_WORKERS + 1)  # the last worker in RTP's range
    with pytest.raises(ValidationError, match="DIALGUARD_SIP_PORT 5060"):
        Settings(dialer_port_base=5000)  # 5000..5255 takes in the edge's 5060
    with pytest.raises(ValidationError):
        Settings(dialer_port_base=80)


def test_edge_addresses_default_to_the_sip_host() -> None:
    assert Settings(sip_host="10.0.0.5").edge_address_set == {"10.0.0.5"}
    listed = Settings(sip_host="10.0.0.5", edge_addresses=" 10.0.0.1, 10.0.0.2 ,")
    assert listed.edge_address_set == {"10.0.0.1", "10.0.0.2"}
    assert Settings().edge_secret is None


def test_edge_secret_is_hex_or_unset() -> None:
    assert Settings(edge_secret="").edge_secret is None  # empty: dialguard up makes one
    good = "ab" * 16
    secret = Settings(edge_secret=good).edge_secret
    assert secret is not None and secret.get_secret_value() == good
    for bad in ("short", "g" * 32, 'ab"; exit; "' + "a" * 32):
        with pytest.raises(ValidationError, match="hex digits"):
            Settings(edge_secret=bad)
