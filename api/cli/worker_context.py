"""How `dialguard up` starts its dialer workers: forked from one preloaded server, not spawned.

A spawned worker imports on its own everything a dialer runs with (the
command line it was started from, SQLAlchemy, pydantic, pjsua2, the call
policy): about 90 MB private to each, so 100 workers (200 calls) would need
9 GB for the imports alone. Forked from a server that imported them once
(multiprocessing's forkserver with a preload list), those pages are shared
copy-on-write between every worker; a worker's own memory is what its calls
write. `api.cli.prefork_freeze`, imported last, moves the preloaded objects
out of the garbage collector's reach so that a worker's collections do not
write to (and so copy) every shared page.

The forkserver is a child of the supervisor and exits when the supervisor
does (it reads EOF from the supervisor's end of a pipe); workers are its
children, which `api.cli.supervisor._child_setup` allows for.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext

#: What a worker imports: the entry script's module (re-run in each child as __mp_main__),
#: the child's target module and the dialer itself; the freeze last.
PRELOAD = (
    "api.cli.main",
    "api.cli.supervisor",
    "api.wiring",
    "dialer.process",
    "api.cli.prefork_freeze",
)


def worker_context() -> ForkServerContext:
    """The forkserver context the workers start from (the server starts with the first)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    assert isinstance(ctx, ForkServerContext)
    return ctx


def drop_forkserver_pipe() -> None:
    """In a forked worker: close its copy of the pipe whose end tells the forkserver to exit.

    multiprocessing hands every child of the forkserver that pipe's writing
    end, so the server sees no EOF (and does not exit) while a worker lives;
    workers, in turn, stop when the server, their parent, is gone. A killed
    supervisor would leave both waiting on each other. Nothing in a worker
    starts processes of its own through the forkserver. A no-op elsewhere.
    """
    server = forkserver._forkserver  # the module's one instance
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None and multiprocessing.parent_process() is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[attr-defined]
