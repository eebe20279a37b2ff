"""Kamailio, the SIP edge, reads agents' logins and writes their registrations here.

`kamailio_subscriber` is a view over `sip_accounts`, so the HA1 values
Dialguard stores are the only copy of a credential: auth_db reads `ha1`
(MD5) or `ha1_sha256` from it, and a disabled account is simply absent.
`location` and the `version` rows are the schema of Kamailio 5.6's usrloc
(db_mode write-through), byte for byte what Kamailio's own
usrloc-create.sql makes, so Dialguard can read where each agent's
softphone registered (click-to-call, the console).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

#: Kamailio checks these table versions at start (usrloc 5.6: location 9).
_VERSIONS = (("version", 1), ("location", 9), ("location_attrs", 1))


def _serial() -> str:
    return "SERIAL" if op.get_bind().dialect.name == "postgresql" else "INTEGER"


def upgrade() -> None:
    op.execute(
        "CREATE VIEW kamailio_subscriber AS "
        "SELECT username, realm AS domain, ha1_md5 AS ha1, ha1_sha256 "
        "FROM sip_accounts WHERE NOT disabled"
    )
    op.execute(
        f"""CREATE TABLE version (
    id {_serial()} PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
)"""
    )
    op.execute(
        f"""CREATE TABLE location (
    id {_serial()} PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
)"""
    )
    op.execute("CREATE INDEX location_account_contact_idx ON location (username, domain, contact)")
    op.execute("CREATE INDEX location_expires_idx ON location (expires)")
    op.execute("CREATE INDEX location_tcpcon_idx ON location (connection_id)")
    op.execute("CREATE INDEX location_connection_idx ON location (server_id, connection_id)")
    op.execute(
        f"""CREATE TABLE location_attrs (
    id {_serial()} PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    aname VARCHAR(64) DEFAULT '' NOT NULL,
    atype INTEGER DEFAULT 0 NOT NULL,
    avalue VARCHAR(512) DEFAULT '' NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL
)"""
    )
    op.execute(
        "CREATE INDEX location_attrs_account_record_idx ON location_attrs (username, domain, ruid)"
    )
    versions = sa.table(
        "version", sa.column("table_name", sa.String), sa.column("table_version", sa.Integer)
    )
    op.bulk_insert(versions, [{"table_name": n, "table_version": v} for n, v in _VERSIONS])


def downgrade() -> None:
    op.execute("DROP TABLE location_attrs")
    op.execute("DROP TABLE location")
    op.execute("DROP TABLE version")
    op.execute("DROP VIEW kamailio_subscriber")
