"""`dialguard edge …`: the Kamailio edge's config for production edge hosts.

`dialguard up` runs Kamailio itself; a site with edge hosts of their own
runs the same generated config there: `dialguard edge config > kamailio.cfg`.
The edge secret and the database URL (with its password) are never in the
printed config: it includes them from a 0600 file that `--write` makes,
together with the dispatcher list of every dialer host's workers and the
tls module's config.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from api.errors import ConfigError
from api.i18n import N_
from api.settings import Settings
from api.wiring import edge_config, edge_workers_list, edge_workers_per_host
from dialer.edge.process import write_config
from dialer.edge.tls import CERT_NAME, KEY_NAME, ensure_self_signed

DEFAULT_DIR = Path("/etc/kamailio/dialguard")
DEFAULT_RPC_PORT = 5064


def add_edge_commands(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = top.add_parser("edge", help=N_("the Kamailio SIP edge")).add_subparsers(
        dest="edge_command", required=True
    )
    config = group.add_parser("config", help=N_("print kamailio.cfg for an edge host"))
    config.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=N_("where the edge host keeps the included files (default %(default)s)"),
    )
    config.add_argument(
        "--dialer-host",
        action="append",
        default=[],
        help=N_(
            "address of a dialer host's workers; repeat for each (default DIALGUARD_DIALER_HOSTS)"
        ),
    )
    config.add_argument(
        "--workers",
        type=int,
        default=0,
        help=N_("workers per dialer host (default DIALGUARD_DIALER_WORKERS)"),
    )
    config.add_argument(
        "--write",
        action="store_true",
        help=N_("also write the secrets include (0600), dispatcher list and TLS files into --dir"),
    )
    config.set_defaults(handler=edge_config_command)


def edge_config_command(settings: Settings, args: argparse.Namespace) -> int:
    directory: Path = args.dir
    if settings.sip_tls_cert is not None and settings.sip_tls_key is not None:
        tls = (settings.sip_tls_cert, settings.sip_tls_key)
    else:
        tls = (directory / CERT_NAME, directory / KEY_NAME)
    config = edge_config(settings, settings.edge_rpc_port or DEFAULT_RPC_PORT, directory, tls)
    # the same list `dialguard up` gives its edge: DIALGUARD_DIALER_HOSTS and _WORKERS
    workers = args.workers or edge_workers_per_host(settings)
    listing = edge_workers_list(settings, workers, args.dialer_host)
    if args.write:
        if settings.edge_secret is None:
            raise ConfigError(
                N_("no edge secret to write"),
                hint=N_(
                    "set DIALGUARD_EDGE_SECRET (the same on edge and dialer hosts), "
                    "e.g. to the output of: python3 -c 'import secrets; "
                    "print(secrets.token_hex(32))'"
                ),
            )
        if tls[0].parent == directory:
            ensure_self_signed(directory, settings.sip_host, datetime.datetime.now(datetime.UTC))
        path = write_config(
            config,
            settings.edge_secret.get_secret_value(),
            settings.effective_database_url,
            listing,
        )
        sys.stdout.write(path.read_text())
        return 0
    from dialer.edge.config import render

    sys.stdout.write(render(config))
    return 0
