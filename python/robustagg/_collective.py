"""robustagg.allreduce / robustagg.reduce_scatter over a caller's transport.

The C library runs the robust all-reduce of robustagg_transport.h; the data
moves through two collectives the caller's Transport object provides (on
1-D uint8 NumPy views of the library's buffers), so any communication layer
that can do an all-to-all and an all-gather carries every rule sharded, at an
all-reduce's traffic. robustagg.torch.ProcessGroupTransport is one, over
torch.distributed.
"""

import abc
import ctypes
import threading

import numpy as np

from . import _core
from . import _lib as L


class Transport(abc.ABC):
    """The two collectives robustagg's robust all-reduce runs on. Subclassing is
    optional: robustagg.allreduce takes any object with these four attributes.

    rank, size: this rank and the number of ranks (the number of inputs).
    Buffers are 1-D uint8 NumPy arrays over the library's memory; counts and
    displacements are lists of byte counts, one per rank. Every method is a
    collective: all ranks call it in the same order with consistent counts,
    and it returns once this rank's part is done. Raise to fail the call: the
    exception comes back to the caller of robustagg.allreduce (as the cause of
    a RaggError with status RAGG_ERR_TRANSPORT).
    """

    rank = 0
    size = 1

    @abc.abstractmethod
    def alltoallv(self, send, send_counts, send_displs, recv, recv_counts, recv_displs):
        """Send send[send_displs[p]:+send_counts[p]] to rank p and receive rank p's
        bytes into recv[recv_displs[p]:+recv_counts[p]], for every p."""

    @abc.abstractmethod
    def allgatherv(self, buf, counts, displs):
        """In place: rank p's block is buf[displs[p]:+counts[p]]; this rank's is there,
        every other rank's arrives."""


def _view(ptr, nbytes):
    if nbytes == 0 or not ptr:
        return np.empty(0, dtype=np.uint8)
    return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))


def _span(counts, displs):
    return max((d + c for c, d in zip(counts, displs) if c), default=0)


class _Bridge:
    """A Transport as ragg_transport_ops_t; keeps the first exception a callback raised."""

    def __init__(self, transport):
        rank, size = int(transport.rank), int(transport.size)
        self.t = transport
        self.size = size
        self.error = None
        self._a2a = L.ALLTOALLV(self._alltoallv)
        self._ag = L.ALLGATHERV(self._allgatherv)
        self.ops = L.TransportOps(rank, size, None, self._a2a, self._ag)

    def _lists(self, *arrays):
        return [[int(a[p]) for p in range(self.size)] for a in arrays]

    def _alltoallv(self, _user, sbuf, sc, sd, rbuf, rc, rd):
        try:
            sc, sd, rc, rd = self._lists(sc, sd, rc, rd)
            self.t.alltoallv(_view(sbuf, _span(sc, sd)), sc, sd, _view(rbuf, _span(rc, rd)), rc, rd)
            return 0
        except BaseException as e:  # noqa: BLE001 - nothing may unwind through C
            self.error = self.error or e
            return 1

    def _allgatherv(self, _user, buf, cnt, dsp):
        try:
            cnt, dsp = self._lists(cnt, dsp)
            self.t.allgatherv(_view(buf, _span(cnt, dsp)), cnt, dsp)
            return 0
        except BaseException as e:  # noqa: BLE001
            self.error = self.error or e
            return 1


_local = threading.local()


def _thread_context():
    """A CPU context of this thread's own: a collective holds its context for the
    whole exchange, and ranks may be threads of one process."""
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        lib = L.lib()
        h = ctypes.c_void_p()
        st = lib.ragg_context_create(ctypes.byref(h), L.BACKEND_CPU, 0)
        if st != L.SUCCESS:
            _core._raise_status(st, h)
        ctx = _local.ctx = _core._Context(h)
        _local.finalizer = _Destroy(h)
    return ctx


class _Destroy:
    """Destroys a thread's context when the thread's locals go."""

    def __init__(self, handle):
        self.handle = handle

    def __del__(self):
        try:
            L.lib().ragg_context_destroy(self.handle)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _vector(x, what, backend):
    """x as a contiguous 1-D array in host (BACKEND_CPU) or device memory."""
    a = _core._wrap(x)
    if a.backend != backend:
        if backend == L.BACKEND_CPU:
            raise _core._arg_error(f"{what} must be in host memory (a NumPy array or a CPU "
                                   "tensor): robustagg.allreduce runs the CPU backend")
        raise _core._arg_error(f"{what} must be in device memory (a CUDA tensor or a CuPy "
                               "array): robustagg.allreduce_nccl runs over NCCL")
    if len(a.shape) != 1:
        raise _core._arg_error(f"{what} must be 1-D, got shape {tuple(a.shape)}")
    if a.shape[0] > 1 and a.strides[0] != 1:
        raise _core._arg_error(f"{what} must be contiguous, got stride {a.strides[0]}")
    return a


def _buffers(kind, x, out, size, cfg, backend, return_report, options):
    """x and out as vectors, the count each rank receives, and the report."""
    a = _vector(x, "x", backend)
    total = a.shape[0]
    if kind == "reduce_scatter":
        if total % size:
            raise _core._arg_error(f"x holds {total} values, not a multiple of the {size} ranks")
        count = total // size
    else:
        count = total
    if out is None:
        out = _core._empty_like(a, (count,))
    o = _vector(out, "out", backend)
    _core._same_place(a, o, "out")
    if o.shape[0] != count:
        raise _core._arg_error(f"out must hold {count} values, got {o.shape[0]}")
    if options.get("cc_center") is not None:
        _core._center(cfg, a, total, options)
    rep, fetch = _core._report(a, size, return_report)
    return a, out, o, count, rep, fetch


def _check_mode_reduce(mode, reduce):
    if mode not in L.MODES:
        raise _core._arg_error(f"mode={mode!r}: 'sharded' or 'replicated'")
    if reduce not in L.REDUCE:
        raise _core._arg_error(f"reduce={reduce!r}: 'mean' or 'sum'")


def _run(kind, x, rule, f, transport, mode, reduce, out, return_report, options):
    lib = L.lib()
    cfg = _core.make_config(rule, f, options)
    _check_mode_reduce(mode, reduce)
    for attr in ("rank", "size", "alltoallv", "allgatherv"):
        if not hasattr(transport, attr):
            raise TypeError(f"transport has no {attr!r}: see robustagg.Transport")
    size = int(transport.size)
    if size < 1 or not 0 <= int(transport.rank) < size:
        raise _core._arg_error(f"transport.rank = {transport.rank} must be in [0, transport.size "
                               f"= {transport.size})")
    a, out, o, count, rep, fetch = _buffers(kind, x, out, size, cfg, L.BACKEND_CPU,
                                            return_report, options)
    bridge = _Bridge(transport)
    ctx = _thread_context()
    fn = lib.ragg_allreduce_transport if kind == "allreduce" else lib.ragg_reduce_scatter_transport
    args = [ctypes.byref(cfg), ctypes.c_void_p(a.ptr), ctypes.c_void_p(o.ptr), count, a.dtype,
            L.REDUCE[reduce]]
    if kind == "allreduce":
        args.append(L.MODES[mode])
    args += [ctypes.byref(bridge.ops), rep]
    st = fn(ctx.handle, *args)
    if isinstance(bridge.error, (KeyboardInterrupt, SystemExit)):
        raise bridge.error  # an interrupt stays an interrupt
    if st != L.SUCCESS:
        try:
            _core._raise_status(st, ctx.handle)
        except _core.RaggError as e:
            if bridge.error is not None:
                raise e from bridge.error
            raise
    return (out, fetch()) if return_report else out


def allreduce(x, rule="median", f=1, *, transport, mode="sharded", reduce="mean", out=None,
              return_report=False, **options):
    """Robust all-reduce of this rank's vector x over transport (a robustagg.Transport).

    Every rank calls it with its own x (a contiguous 1-D NumPy array or CPU
    tensor of the same length and dtype) and the same rule, f, mode, reduce and
    options; every rank gets the same bits: the robust aggregate of the
    transport.size vectors (reduce="mean") or size times it ("sum", what a sum
    all-reduce returns). mode="sharded" moves an all-reduce's bytes (every
    rank aggregates one shard; Gram-space rules add a size x size matrix of
    partial sums); "replicated" gathers every vector on every rank. out may be
    x itself. With return_report=True, also the Report (the same on every
    rank).
    """
    return _run("allreduce", x, rule, f, transport, mode, reduce, out, return_report, options)


def reduce_scatter(x, rule="median", f=1, *, transport, reduce="mean", out=None,
                   return_report=False, **options):
    """Robust reduce-scatter: x holds size * c values; rank r gets the robust
    aggregate of values [r c, (r + 1) c) of every rank's x (c values)."""
    return _run("reduce_scatter", x, rule, f, transport, "sharded", reduce, out, return_report,
                options)


# ---------------------------------------------------------------- over NCCL

def _run_nccl(kind, x, rule, f, comm, size, mode, reduce, out, return_report, options):
    h = L.nccl_lib()
    if h is None:
        raise _core.RaggError(L.ERR_UNSUPPORTED, "RAGG_ERR_UNSUPPORTED", L.nccl_error())
    cfg = _core.make_config(rule, f, options)
    _check_mode_reduce(mode, reduce)
    if not isinstance(comm, int) or comm == 0:
        raise _core._arg_error(f"comm={comm!r}: the ncclComm_t as a nonzero int (for example "
                               "ProcessGroupNCCL.comm_ptr(), or CuPy's NcclCommunicator.ptr)")
    size = int(size)
    if size < 1:
        raise _core._arg_error(f"size={size}: the number of ranks of comm, >= 1")
    a, out, o, count, rep, fetch = _buffers(kind, x, out, size, cfg, L.BACKEND_CUDA,
                                            return_report, options)
    ctx = _core._context(L.BACKEND_CUDA, a.device, a.stream)
    args = [ctypes.byref(cfg), ctypes.c_void_p(a.ptr), ctypes.c_void_p(o.ptr), count,
            L.NCCL_TYPES[a.dtype], L.REDUCE[reduce]]
    if kind == "allreduce":
        args.append(L.MODES[mode])
        fn = h.ragg_allreduce_nccl_report
    else:
        fn = h.ragg_reduce_scatter_nccl_report
    args += [ctypes.c_void_p(comm), ctypes.c_void_p(a.stream or None), rep]
    _core._call(fn, ctx, *args)
    return (out, fetch()) if return_report else out


def allreduce_nccl(x, rule="median", f=1, *, comm, size, mode="sharded", reduce="mean", out=None,
                   return_report=False, **options):
    """Robust all-reduce over an NCCL communicator (librobustagg_nccl's
    ragg_allreduce_nccl), on device memory.

    x: this rank's contiguous 1-D CUDA tensor or CuPy array (float32, float16,
    bfloat16), ordered on the current stream; comm: the ncclComm_t as an int
    (torch: dist.group.WORLD._get_backend(device).comm_ptr()); size: its number
    of ranks. Everything else is robustagg.allreduce's: every rank passes the
    same count, dtype, rule, f, mode, reduce and options and gets the same bits.
    The call is stream-ordered: it returns once the work is queued."""
    return _run_nccl("allreduce", x, rule, f, comm, size, mode, reduce, out, return_report,
                     options)


def reduce_scatter_nccl(x, rule="median", f=1, *, comm, size, reduce="mean", out=None,
                        return_report=False, **options):
    """Robust reduce-scatter over an NCCL communicator: x holds size * c values;
    rank r gets the robust aggregate of values [r c, (r + 1) c) of every rank's x."""
    return _run_nccl("reduce_scatter", x, rule, f, comm, size, "sharded", reduce, out,
                     return_report, options)
