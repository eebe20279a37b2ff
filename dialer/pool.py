"""How many dialer workers a host carries: the rule, pure (the caller reads the host).

pjsua2 carries 4 call legs a process (shared/FACTS.md), so a worker bridges 2
calls and concurrency comes from processes. `dialguard up` sizes the pool at
start from the host's cores and available memory, unless
DIALGUARD_DIALER_WORKERS names a number (0 or `auto`: sized here).

Both limits rest on measurements (bench/README.md, *Concurrent calls*):

- memory: workers are forked from one preloaded server
  (`api.cli.worker_context`), so what they imported is shared; a worker's own
  memory (PSS, shared pages counted once) is about 33 MB with its calls up
  (100 workers, 200 calls); each is given `WORKER_BUDGET_MIB` (that plus
  headroom), after `RESERVED_MIB` for the rest of the product (the
  forkserver, API, uploader, announcements, QA, the embedded S3: 1.6 GB
  measured beside 100 workers, 2.3 GB with a transcriber's Whisper model);
- cores: `WORKERS_PER_CORE` from the largest load that passed every run (no
  call failed, no recording gap) on a 2-core host shared with other work.

The smaller limit wins; a host with less memory than the reserve still gets
one worker, since no worker means no call at all.
"""

from __future__ import annotations

from dataclasses import dataclass

CALLS_PER_WORKER = 2  # 4 legs a pjsua2 process, 2 legs a bridged call
WORKER_PSS_MB = 33  # measured with its calls up; see the module's docstring
WORKER_BUDGET_MIB = 48  # what a worker is given: its measured size plus headroom
RESERVED_MIB = 2560  # everything else `dialguard up` runs (2.3 GB measured)
WORKERS_PER_CORE = 25  # 100 calls on 2 cores passed 3 runs of 3; 150 and 200 lost audio in some
MAX_WORKERS = 256  # the setting's ceiling, and auto's


@dataclass(frozen=True)
class PoolSize:
    """The pool `dialguard up` starts, and what it rests on."""

    workers: int
    cores: int
    available_mib: int | None  # None: the host's memory could not be read
    by_cores: int  # the limit the cores set
    by_memory: int | None  # the limit the memory sets (None: unknown)
    sized: int  # what the host's limits give: the pool unless a size is requested
    requested: int  # DIALGUARD_DIALER_WORKERS; 0 means sized here

    @property
    def calls(self) -> int:
        return self.workers * CALLS_PER_WORKER

    def describe(self) -> str:
        """One line for the status page and the log, e.g.
        `50 workers = 100 calls: 2 cores (25 workers a core), 21.5 GiB available (room for 256)`.
        """
        head = f"{_workers(self.workers)} = {self.calls} calls"
        memory = (
            f"{self.available_mib / 1024:.1f} GiB available"
            if self.available_mib is not None
            else "memory unknown"
        )
        host = f"{self.cores} {'core' if self.cores == 1 else 'cores'}"
        if self.requested:
            return (
                f"{head}: set by DIALGUARD_DIALER_WORKERS (this host: {host}, {memory}; "
                f"auto would start {self.sized})"
            )
        room = f" (room for {self.by_memory})" if self.by_memory is not None else ""
        return f"{head}: {host} ({WORKERS_PER_CORE} workers a core), {memory}{room}"

    @property
    def above_host(self) -> bool:
        """An explicit size beyond what the host's cores or memory carry: worth a warning."""
        return self.workers > self.sized


def _workers(n: int) -> str:
    return f"{n} worker" if n == 1 else f"{n} workers"


def size_pool(cores: int, available_bytes: int | None, requested: int = 0) -> PoolSize:
    """The pool for a host with `cores` and `available_bytes` of memory free to use.

    `requested` (DIALGUARD_DIALER_WORKERS) wins when it is not 0; else the
    smaller of the core and memory limits, at least 1 and at most MAX_WORKERS.
    """
    if cores < 1:
        raise ValueError(f"a host has at least one core, not {cores}")
    if requested < 0 or requested > MAX_WORKERS:
        raise ValueError(f"the dialer pool is 0 (auto) to {MAX_WORKERS} workers, not {requested}")
    by_cores = min(cores * WORKERS_PER_CORE, MAX_WORKERS)
    available_mib = None if available_bytes is None else max(0, available_bytes) // 2**20
    by_memory = (
        None
        if available_mib is None
        else min(max(0, available_mib - RESERVED_MIB) // WORKER_BUDGET_MIB, MAX_WORKERS)
    )
    sized = max(1, min(by_cores, by_cores if by_memory is None else by_memory))
    return PoolSize(
        workers=requested or sized,
        cores=cores,
        available_mib=available_mib,
        by_cores=by_cores,
        by_memory=by_memory,
        sized=sized,
        requested=requested,
    )


def mem_available(meminfo: str) -> int | None:
    """MemAvailable of a /proc/meminfo text, in bytes; None when it has none."""
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "MemAvailable":
            fields = rest.split()
            if fields and fields[0].isdigit():
                scale = 1024 if len(fields) > 1 and fields[1].lower() == "kb" else 1
                return int(fields[0]) * scale
    return None


def cgroup_room(limit: str, current: str) -> int | None:
    """What a cgroup v2 memory limit leaves (memory.max less memory.current); None: no limit."""
    limit, current = limit.strip(), current.strip()
    if not limit.isdigit() or not current.isdigit():
        return None  # "max": the cgroup sets no limit
    return max(0, int(limit) - int(current))
