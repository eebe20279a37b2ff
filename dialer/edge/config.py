"""kamailio.cfg for Dialguard's SIP edge, rendered from the settings. Pure: no I/O.

One template serves `dialguard up` (everything on one host) and production
edge hosts (`dialguard edge config`), so what is tested here is what runs
there. The edge secret and the database URL (which may carry a password)
never appear in the rendered config: they are `#!define`d in a separate
0600 include file (`render_secrets`), named by path.

What the script does, in order, for each request:
1. sanity checks and a size limit, before anything else reads the message;
2. flood control: pike per source address, a flooding source banned in an
   htable for `flood_s` (worker addresses are exempt; an address an agent
   logged in from, such as a floor's NAT address, has a higher limit);
3. in-dialog requests follow their Record-Route (BYE, re-INVITE reach the
   worker that holds the call);
4. a worker's click-to-call INVITE, recognised by a valid edge mark, is
   relayed to the agent's registered softphone;
5. everything else logs in with digest (auth_db over Dialguard's own
   accounts). Failures are counted per (source, account), per account and
   per source; every failure gets the same 403, known account or not.
6. REGISTER is saved (usrloc write-through to Dialguard's database), INVITE
   is marked for the worker (`dialer.edge.trust`) and dispatched; a worker
   answering 503 (it carries its two calls) passes the call to the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Dispatcher set the workers are in (the contract with `dialer.edge.dispatch`).
WORKER_SET = 1
#: Largest SIP message the edge reads; a softphone's INVITE with SDP is ~2 KiB.
MAX_MESSAGE_BYTES = 16384
#: How far the clock in a worker's click-to-call mark may be from ours.
MARK_SKEW_S = 30
ALGORITHMS = ("MD5", "SHA-256")
_SAFE_VALUE = re.compile(r'^[^"\\\r\n]*$')


class EdgeConfigError(ValueError):
    """A value that cannot go into kamailio.cfg (a quote in a path, an unknown database)."""


@dataclass(frozen=True)
class EdgeBans:
    """Thresholds and durations of the edge's bans (DIALGUARD_EDGE_BAN_*)."""

    flood_requests: int = 64  # per source in 2 s
    flood_s: int = 60
    # per source in 2 s once an agent logged in from it (within the hour): a floor behind
    # one NAT address is one source, 5 requests a call (bench/edge_flood.py --one-address)
    agent_source_factor: int = 16
    login_failures: int = 5  # per (source, account)
    account_failures: int = 20  # per account, all sources
    source_failures: int = 30  # per source, all accounts
    login_s: int = 300

    @property
    def agent_source_requests(self) -> int:
        return self.flood_requests * self.agent_source_factor


@dataclass(frozen=True)
class EdgeConfig:
    host: str
    port: int  # UDP and TCP
    tls_port: int
    realm: str
    algorithm: str  # the one digest algorithm challenged with: MD5 or SHA-256
    dispatcher_list: Path
    tls_cert: Path
    tls_key: Path
    rpc_port: int  # JSON-RPC over HTTP on 127.0.0.1
    secrets_file: Path  # the 0600 include: edge secret and database URL
    bans: EdgeBans = field(default_factory=EdgeBans)
    max_message_bytes: int = MAX_MESSAGE_BYTES
    children: int = 2  # UDP receivers per socket and TCP workers: calls are few and short

    @property
    def tls_file(self) -> Path:
        """The tls module's own config, next to the secrets include."""
        return self.secrets_file.parent / "kamailio-tls.cfg"


def kamailio_db_url(url: str) -> str:
    """Dialguard's SQLAlchemy URL as Kamailio's db_sqlite / db_postgres want it."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        path = unquote(parts.path)
        if not path.startswith("/") or path.strip("/") in ("", ":memory:"):
            raise EdgeConfigError("the edge needs an SQLite database file with an absolute path")
        return "sqlite:///" + path.lstrip("/")
    if scheme in ("postgresql", "postgres"):
        netloc = parts.netloc or "127.0.0.1"
        if "@" in netloc:
            netloc = unquote(netloc.split("@", 1)[0]) + "@" + netloc.split("@", 1)[1]
            netloc = netloc.replace("%40", "@")
        return f"postgres://{netloc}{parts.path}"
    raise EdgeConfigError(f"the edge cannot read a {scheme} database (SQLite or PostgreSQL)")


def first_algorithm(sip_digest: str) -> str:
    """The site's first digest algorithm: Kamailio challenges with one, so the first wins."""
    first = sip_digest.split(",", 1)[0].strip().upper()
    if first not in ALGORITHMS:
        raise EdgeConfigError(f"digest algorithm {first!r} is not MD5 or SHA-256")
    return first


def _quoted(value: object) -> str:
    text = str(value)
    if not _SAFE_VALUE.match(text):
        raise EdgeConfigError(f"{text!r} cannot be written into kamailio.cfg")
    return f'"{text}"'


def render_secrets(secret: str, database_url: str) -> str:
    """The include file's text. `secret` is hex (the worker checks the same string)."""
    if not re.fullmatch(r"[0-9a-f]{16,128}", secret):
        raise EdgeConfigError("the edge secret must be 16 to 128 lowercase hex digits")
    return (
        "# Dialguard edge secrets: mode 0600, never printed\n"
        f"#!define DG_SECRET {_quoted(secret)}\n"
        f"#!define DG_DB_URL {_quoted(kamailio_db_url(database_url))}\n"
    )


def render_tls(config: EdgeConfig) -> str:
    """The tls module's config: TLS 1.2 and up, the site's (or the generated) certificate,
    no client certificates (softphones log in with digest)."""
    for path in (config.tls_cert, config.tls_key):
        _quoted(path)
    return f"""[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = {config.tls_cert}
private_key = {config.tls_key}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


def render(config: EdgeConfig) -> str:
    """The whole kamailio.cfg."""
    if config.algorithm not in ALGORITHMS:
        raise EdgeConfigError(f"digest algorithm {config.algorithm!r} is not MD5 or SHA-256")
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,64}", config.realm):
        raise EdgeConfigError(f"realm {config.realm!r} is not a host-like name")
    bans = config.bans
    ha1_column = "ha1" if config.algorithm == "MD5" else "ha1_sha256"
    q = _quoted
    return f"""#!KAMAILIO
# Dialguard SIP edge, generated by `dialguard edge config`: edit the settings, not this file.
#!include_file {q(config.secrets_file)}

#!define REALM {q(config.realm)}
#!define RPC_PORT {config.rpc_port}
#!define MAX_MSG {config.max_message_bytes}
#!define AGENT_SOURCE_FLOOD {bans.agent_source_requests}
#!define LOGIN_FAILS {bans.login_failures}
#!define ACCOUNT_FAILS {bans.account_failures}
#!define SOURCE_FAILS {bans.source_failures}
#!define MARK_SKEW {MARK_SKEW_S}

debug=1
log_stderror=yes
log_facility=LOG_LOCAL0
log_prefix="{{$mt $hdr(CSeq) $ci}} "
memdbg=5
memlog=5
children={config.children}
tcp_children={config.children}
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=no
server_signature=yes
sip_warning=0
server_header="Server: Dialguard edge"
user_agent_header="User-Agent: Dialguard edge"
tcp_connection_lifetime=3605
tcp_accept_no_cl=no
tcp_max_connections=2048
tls_max_connections=2048
enable_tls=yes

listen=udp:{config.host}:{config.port}
listen=tcp:{config.host}:{config.port}
listen=tls:{config.host}:{config.tls_port}
listen=tcp:127.0.0.1:{config.rpc_port}

mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "crypto.so"
loadmodule "htable.so"
loadmodule "pike.so"
loadmodule "db_sqlite.so"
loadmodule "db_postgres.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "dispatcher.so"
loadmodule "tls.so"
loadmodule "xhttp.so"
loadmodule "jsonrpcs.so"

# A worker that does not answer a probe within 0.8 s leaves the set (probed every second:
# gone within 2 s); an INVITE gives a worker 2 s to answer (t_set_fr), then the next one.
modparam("tm", "fr_timer", 800)
modparam("tm", "fr_inv_timer", 60000)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)

modparam("auth", "algorithm", "{config.algorithm}")
modparam("auth", "nonce_expire", 60)
modparam("auth", "nonce_count", 1)
modparam("auth_db", "db_url", DG_DB_URL)
modparam("auth_db", "calculate_ha1", 0)
modparam("auth_db", "password_column", "{ha1_column}")
modparam("auth_db", "use_domain", 1)
modparam("auth_db", "version_table", 0)

modparam("usrloc", "db_url", DG_DB_URL)
modparam("usrloc", "db_mode", 1)
modparam("usrloc", "use_domain", 0)
modparam("usrloc", "timer_interval", 30)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 30)

modparam("dispatcher", "list_file", {q(config.dispatcher_list)})
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:edge@{config.host}")
modparam("dispatcher", "ds_ping_interval", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_ping_reply_codes", "class=2;code=405;code=501;code=503")
# Dispatch by load (algorithm 10): each call counts against its worker (duid) from the
# INVITE until its BYE, and a worker at its maxload (the 2 calls pjsua2 carries) is not
# chosen. A call never answered is forgotten after ds_hash_initexpire.
modparam("dispatcher", "ds_hash_size", 9)
modparam("dispatcher", "ds_hash_expire", 7200)
modparam("dispatcher", "ds_hash_initexpire", 90)

# Bans. Keys: a source address, or "source|account". Expiry is the ban's length.
modparam("htable", "htable", "ipban=>size=8;autoexpire={bans.flood_s};")
modparam("htable", "htable", "pairban=>size=8;autoexpire={bans.login_s};")
modparam("htable", "htable", "srcban=>size=8;autoexpire={bans.login_s};")
modparam("htable", "htable", "pairfail=>size=10;autoexpire={bans.login_s};")
modparam("htable", "htable", "acctfail=>size=8;autoexpire={bans.login_s};")
modparam("htable", "htable", "srcfail=>size=8;autoexpire={bans.login_s};")
modparam("htable", "htable", "loggedin=>size=10;autoexpire=3600;")
modparam("htable", "htable", "agentsrc=>size=10;autoexpire=3600;")
# a fixed 2 s window per agents' address: its count is not renewed by each request
modparam("htable", "htable", "agentrate=>size=10;autoexpire=2;updateexpire=0;")
modparam("htable", "timer_interval", 1)
modparam("pike", "sampling_time_unit", 2)
modparam("pike", "reqs_density_per_unit", {bans.flood_requests})
modparam("pike", "remove_latency", 4)

modparam("tls", "config", {q(config.tls_file)})

modparam("jsonrpcs", "transport", 1)
modparam("jsonrpcs", "pretty_format", 0)

request_route {{
    if (!sanity_check()) {{
        exit;
    }}
    if ($ml > MAX_MSG) {{
        sl_send_reply("513", "Message Too Large");
        exit;
    }}
    route(FLOOD);
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && $rU == $null) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (has_totag()) {{
        route(WITHINDLG);
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            ds_load_update();
            t_relay();
        }}
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (!is_method("REGISTER|INVITE")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (t_check_trans()) {{
        exit;
    }}
    if (is_method("INVITE") && is_present_hf("X-Dialguard-Edge")
            && ds_is_from_list("{WORKER_SET}", "3")) {{
        route(TOAGENT);
        exit;
    }}
    route(AUTH);
    remove_hf_re("^X-Dialguard-");
    if (is_method("REGISTER")) {{
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    route(TOWORKER);
}}

# A source sending more than the flood rate is dropped, silently, for the ban's length.
# An address agents logged in from within the hour (a floor behind one NAT address sends
# every agent's requests from it) gets AGENT_SOURCE_FLOOD requests in 2 s instead.
route[FLOOD] {{
    if (ds_is_from_list("{WORKER_SET}", "3")) {{
        return;
    }}
    if ($sht(ipban=>$si) != $null) {{
        exit;
    }}
    if ($sht(agentsrc=>$si) != $null) {{
        sht_lock("agentrate=>$si");
        $var(rate) = 1 + $sht(agentrate=>$si);
        $sht(agentrate=>$si) = $var(rate);
        sht_unlock("agentrate=>$si");
        if ($var(rate) <= AGENT_SOURCE_FLOOD) {{
            return;
        }}
    }} else if (pike_check_req()) {{
        return;
    }}
    # the UDP and TCP processes see the flood at once: one of them bans and logs
    sht_lock("ipban=>$si");
    $var(new) = 0;
    if ($sht(ipban=>$si) == $null) {{
        $sht(ipban=>$si) = 1;
        $var(new) = 1;
    }}
    sht_unlock("ipban=>$si");
    if ($var(new) == 1) {{
        xlog("L_WARN", "edge: ban flood source=$si seconds={bans.flood_s}\\n");
    }}
    exit;
}}

# In-dialog requests follow their Route set, between an agent and a worker only: a
# crafted Route set cannot make the edge relay to anyone else (no open relay).
route[WITHINDLG] {{
    if (is_method("BYE")) {{
        ds_load_update();  # the call no longer counts against its worker
    }}
    if (loose_route()) {{
        if (!ds_is_from_list("{WORKER_SET}", "3")) {{
            if ($du == $null) {{
                $var(next) = $ru;
            }} else {{
                $var(next) = $du;
            }}
            if (!ds_is_from_list("{WORKER_SET}", "2", "$var(next)")) {{
                sl_send_reply("403", "Forbidden");
                exit;
            }}
        }}
        t_relay();
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    sl_send_reply("404", "Not Found");
}}

# Digest login against Dialguard's accounts. Every failed login gets the same 403,
# whether the account exists or not; only the log says which it was.
route[AUTH] {{
    if (!is_present_hf("Authorization") && !is_present_hf("Proxy-Authorization")) {{
        if ($sht(srcban=>$si) != $null) {{
            exit;
        }}
        auth_challenge(REALM, "1");
        exit;
    }}
    $var(user) = $(au{{s.substr,0,64}});
    $var(pair) = $si + "|" + $var(user);
    if ($sht(pairban=>$var(pair)) != $null) {{
        exit;
    }}
    if ($sht(srcban=>$si) != $null && $sht(loggedin=>$var(pair)) == $null) {{
        exit;
    }}
    auth_check(REALM, "kamailio_subscriber", "1");
    $var(rc) = $rc;
    if ($var(rc) > 0) {{
        $sht(loggedin=>$var(pair)) = 1;
        $sht(agentsrc=>$si) = 1;
        consume_credentials();
        return;
    }}
    if ($var(rc) == -4 || $var(rc) == -5 || $var(rc) == -6 || $var(rc) == -7) {{
        auth_challenge(REALM, "1");
        exit;
    }}
    route(LOGINFAILED);
    sl_send_reply("403", "Forbidden");
    exit;
}}

route[LOGINFAILED] {{
    $var(why) = "bad credentials";
    if ($var(rc) == -2) {{
        $var(why) = "wrong password";
    }} else if ($var(rc) == -3) {{
        $var(why) = "unknown or disabled account";
    }} else if ($var(rc) == -8) {{
        $var(why) = "login name differs from the From/To user";
    }} else if ($var(rc) == -1) {{
        $var(why) = "credentials not understood (algorithm {config.algorithm} expected)";
    }}
    sht_lock("pairfail=>$var(pair)");
    $var(n) = 1 + $sht(pairfail=>$var(pair));
    $sht(pairfail=>$var(pair)) = $var(n);
    sht_unlock("pairfail=>$var(pair)");
    sht_lock("acctfail=>$var(user)");
    $var(a) = 1 + $sht(acctfail=>$var(user));
    $sht(acctfail=>$var(user)) = $var(a);
    sht_unlock("acctfail=>$var(user)");
    sht_lock("srcfail=>$si");
    $var(s) = 1 + $sht(srcfail=>$si);
    $sht(srcfail=>$si) = $var(s);
    sht_unlock("srcfail=>$si");
    if ($var(n) == 1 && $var(s) <= 3) {{
        xlog("L_NOTICE", "edge: login failed source=$si account=$var(user) reason=$var(why)\\n");
    }}
    if ($var(n) >= LOGIN_FAILS || $var(a) >= ACCOUNT_FAILS) {{
        sht_lock("pairban=>$var(pair)");
        $var(new) = 0;
        if ($sht(pairban=>$var(pair)) == $null) {{
            $sht(pairban=>$var(pair)) = 1;
            $var(new) = 1;
        }}
        sht_unlock("pairban=>$var(pair)");
        if ($var(new) == 1) {{
            xlog("L_WARN",
                "edge: ban login source=$si account=$var(user) seconds={bans.login_s}\\n");
        }}
    }}
    if ($var(s) >= SOURCE_FAILS) {{
        sht_lock("srcban=>$si");
        $var(new) = 0;
        if ($sht(srcban=>$si) == $null) {{
            $sht(srcban=>$si) = 1;
            $var(new) = 1;
        }}
        sht_unlock("srcban=>$si");
        if ($var(new) == 1) {{
            xlog("L_WARN", "edge: ban login source=$si accounts=any seconds={bans.login_s}\\n");
        }}
    }}
}}

# An authenticated agent's call: marked for the worker (dialer.edge.trust), dispatched.
route[TOWORKER] {{
    $var(secret) = DG_SECRET;
    $var(ts) = $Ts;
    $var(d) = $var(secret) + "|" + $var(ts) + "|" + $ci + "|" + $au + "|" + $var(secret);
    append_hf("X-Dialguard-Agent: $au\\r\\n");
    append_hf("X-Dialguard-Edge: $var(ts);$(var(d){{s.sha256}})\\r\\n");
    append_hf("X-Dialguard-Transport: $pr\\r\\n");
    if (!ds_select_dst("{WORKER_SET}", "10")) {{  # the least loaded worker with room
        sl_send_reply("503", "Service Unavailable");
        exit;
    }}
    record_route();
    t_set_fr(60000, 2000);
    t_on_failure("NEXTWORKER");
    t_on_reply("WORKERREPLY");
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

onreply_route[WORKERREPLY] {{
    if (status =~ "^2[0-9][0-9]$") {{
        ds_load_update();  # answered: the call counts until its BYE
    }}
}}

failure_route[NEXTWORKER] {{
    if (t_is_canceled()) {{
        ds_load_unset();
        exit;
    }}
    if (t_branch_timeout() && !t_branch_replied()) {{
        ds_mark_dst("ip");
    }}
    if (t_check_status("503") || (t_branch_timeout() && !t_branch_replied())) {{
        if (ds_next_dst()) {{
            t_on_failure("NEXTWORKER");
            t_relay();
            exit;
        }}
    }}
    ds_load_unset();  # the call ended here: it no longer counts against the worker
}}

# A worker rings an agent (click-to-call): its mark proves it is one of ours.
route[TOAGENT] {{
    $var(secret) = DG_SECRET;
    $var(mark) = $hdr(X-Dialguard-Edge);
    $var(ts) = $(var(mark){{s.select,0,;}});
    $var(hex) = $(var(mark){{s.select,1,;}});
    $var(d) = $var(secret) + "|" + $var(ts) + "|" + $ci + "|" + $rU + "|" + $var(secret);
    $var(age) = $Ts - $(var(ts){{s.int}});
    if ($var(hex) != $(var(d){{s.sha256}}) || $var(age) > MARK_SKEW || $var(age) < -MARK_SKEW) {{
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    remove_hf_re("^X-Dialguard-");
    if (!lookup("location")) {{
        sl_send_reply("480", "Temporarily Unavailable");
        exit;
    }}
    record_route();
    t_set_fr(60000, 3000);
    if (!t_relay()) {{
        sl_reply_error();
    }}
}}

event_route[htable:expired:ipban] {{
    xlog("L_NOTICE", "edge: unban flood source=$shtrecord(key)\\n");
}}

event_route[htable:expired:pairban] {{
    xlog("L_NOTICE", "edge: unban login source|account=$shtrecord(key)\\n");
}}

event_route[htable:expired:srcban] {{
    xlog("L_NOTICE", "edge: unban login source=$shtrecord(key)\\n");
}}

# JSON-RPC for Dialguard (the bans on the status page), on 127.0.0.1 only; read-only calls.
event_route[xhttp:request] {{
    if ($Rp != RPC_PORT || $si != "127.0.0.1") {{
        xhttp_reply("403", "Forbidden", "text/plain", "");
        exit;
    }}
    $var(method) = $(rb{{re.subst,/.*"method" *: *"([a-z.]+)".*/\\1/}});
    if (!($var(method) =~ "^(htable\\.dump|dispatcher\\.list|core\\.uptime)$")) {{
        xhttp_reply("403", "Forbidden", "text/plain", "");
        exit;
    }}
    jsonrpc_dispatch();
}}
"""
