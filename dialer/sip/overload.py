"""A full worker answers a new INVITE `503` with Retry-After, never pjsua's `486 Busy Here`.

pjsua answers an INVITE it has no call slot for with a stateless 486 before
any callback of ours runs (the wheel has 4 slots, two calls' worth). To the
edge a 486 is the agent's final answer; a 503 makes it try the next worker.
pjsua2 offers no hook ahead of that, so this registers a small PJSIP module
through the wheel's own C API (ctypes): it sits after the transaction and
dialog layers (retransmissions and in-dialog requests never reach it) and
before pjsua, and refuses a new INVITE statelessly while fewer than two
call slots are free. The same module answers an out-of-dialog MESSAGE 405:
pjsua would accept one 200 OK from anyone, with no login asked.

Only for use on the thread that polls the endpoint; create it after
`libStart` and keep a reference for as long as the endpoint runs.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Call legs one pjsua2 process carries (shared/FACTS.md), and a bridged call's.
SLOTS = 4
LEGS_PER_CALL = 2
#: Between PJSIP's UA layer (32: in-dialog requests) and pjsua's application module (64).
_PRIORITY = 40


class _PjStr(ctypes.Structure):
    _fields_ = (("ptr", ctypes.c_char_p), ("slen", ctypes.c_ssize_t))


_ON_RX = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class _Module(ctypes.Structure):
    """`pjsip_module` (pjsip/sip_module.h), field for field."""

    _fields_ = (
        ("prev", ctypes.c_void_p),
        ("next", ctypes.c_void_p),
        ("name", _PjStr),
        ("id", ctypes.c_int),
        ("priority", ctypes.c_int),
        ("load", ctypes.c_void_p),
        ("start", ctypes.c_void_p),
        ("stop", ctypes.c_void_p),
        ("unload", ctypes.c_void_p),
        ("on_rx_request", _ON_RX),
        ("on_rx_response", ctypes.c_void_p),
        ("on_tx_request", ctypes.c_void_p),
        ("on_tx_response", ctypes.c_void_p),
        ("on_tsx_state", ctypes.c_void_p),
    )


class _ListHead(ctypes.Structure):
    """The sentinel of a `pjsip_hdr` list: PJSIP reads only its prev and next."""

    _fields_ = (("prev", ctypes.c_void_p), ("next", ctypes.c_void_p))


def _library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("pjsua2._pjsua2")
    if spec is None or spec.origin is None:
        raise ImportError("pjsua2's extension module is not found")
    lib = ctypes.CDLL(spec.origin)  # already loaded: the same pjsua state
    lib.pjsua_get_pjsip_endpt.restype = ctypes.c_void_p
    lib.pjsua_call_get_count.restype = ctypes.c_uint
    lib.pjsip_rx_data_get_info.restype = ctypes.c_char_p
    lib.pjsip_rx_data_get_info.argtypes = (ctypes.c_void_p,)
    lib.pjsua_pool_create.restype = ctypes.c_void_p
    lib.pjsua_pool_create.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t)
    lib.pjsip_generic_string_hdr_create.restype = ctypes.c_void_p
    lib.pjsip_generic_string_hdr_create.argtypes = (
        ctypes.c_void_p,
        ctypes.POINTER(_PjStr),
        ctypes.POINTER(_PjStr),
    )
    lib.pjsip_endpt_register_module.argtypes = (ctypes.c_void_p, ctypes.POINTER(_Module))
    lib.pjsip_endpt_respond_stateless.argtypes = (
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.POINTER(_PjStr),
        ctypes.c_void_p,
        ctypes.c_void_p,
    )
    return lib


def _pj_str(text: bytes) -> _PjStr:
    return _PjStr(text, len(text))


class OverloadGuard:
    """Answers `503 Service Unavailable` (Retry-After) to new INVITEs while the worker is full.

    `on_refused(count)` is told how many it refused so far, for a rate-limited log.
    """

    def __init__(
        self, retry_after_s: int = 1, on_refused: Callable[[int], None] | None = None
    ) -> None:
        self._lib = _library()
        self._on_refused = on_refused
        self.refused = 0
        #: Set when the worker stops: every new INVITE gets the 503, so the edge passes it on.
        self.draining = False
        self._endpt = self._lib.pjsua_get_pjsip_endpt()
        if not self._endpt:
            raise RuntimeError("pjsua is not running")
        # Every object PJSIP keeps a pointer to is referenced here for the endpoint's life.
        self._reason_text = b"Worker Full"
        self._reason = _pj_str(self._reason_text)
        self._not_allowed_text = b"Method Not Allowed"
        self._not_allowed = _pj_str(self._not_allowed_text)
        self._pool = self._lib.pjsua_pool_create(b"overload", 512, 512)
        self._name_text, self._value_text = b"Retry-After", str(retry_after_s).encode()
        name, value = _pj_str(self._name_text), _pj_str(self._value_text)
        header = self._lib.pjsip_generic_string_hdr_create(
            self._pool, ctypes.byref(name), ctypes.byref(value)
        )
        if not header:
            raise MemoryError("PJSIP could not make the Retry-After header")
        self._headers = _ListHead()
        head = ctypes.addressof(self._headers)
        self._headers.prev = self._headers.next = header
        links = ctypes.cast(header, ctypes.POINTER(ctypes.c_void_p))
        links[0] = links[1] = head
        self._callback = _ON_RX(self._on_rx_request)
        self._module_name = b"mod-dialguard-overload"
        self._module = _Module(
            name=_pj_str(self._module_name),
            id=-1,
            priority=_PRIORITY,
            on_rx_request=self._callback,
        )
        status = self._lib.pjsip_endpt_register_module(self._endpt, ctypes.byref(self._module))
        if status != 0:
            raise RuntimeError(f"PJSIP refused the overload module (status {status})")

    def full(self) -> bool:
        """Whether a new call would find fewer call slots than its two legs need."""
        return int(self._lib.pjsua_call_get_count()) > SLOTS - LEGS_PER_CALL

    def _on_rx_request(self, rdata: int) -> int:
        try:
            info = self._lib.pjsip_rx_data_get_info(rdata) or b""
            if info.startswith(b"Request msg MESSAGE/"):
                # pjsua would answer any out-of-dialog MESSAGE 200 OK, login or not; a
                # worker takes calls, not instant messages.
                self._lib.pjsip_endpt_respond_stateless(
                    self._endpt, rdata, 405, ctypes.byref(self._not_allowed), None, None
                )
                return 1
            if not info.startswith(b"Request msg INVITE/") or not (self.draining or self.full()):
                return 0
            self._lib.pjsip_endpt_respond_stateless(
                self._endpt,
                rdata,
                503,
                ctypes.byref(self._reason),
                ctypes.addressof(self._headers),
                None,
            )
            self.refused += 1
            if self._on_refused is not None:
                self._on_refused(self.refused)
            return 1
        except Exception:  # an exception must not cross into PJSIP
            log.exception("overload guard failed; pjsua handles the request")
            return 0
