"""Locating and loading librobustagg, and its C types (include/robustagg.h)."""

import ctypes
import ctypes.util
import os
import threading

# Where torch is installed it is imported before the C library, so that both
# resolve the same CUDA libraries (torch wheels bring their own cuBLAS).
try:  # pragma: no cover - depends on the environment
    import torch as _torch  # noqa: F401
except Exception:  # ImportError, or a broken CUDA install
    _torch = None

# Pinned values of the C enums.
SUCCESS = 0
ERR_INVALID_ARGUMENT = 1
ERR_TOO_MANY_BYZANTINE = 2
ERR_UNSUPPORTED = 3
ERR_NO_DEVICE = 5

STATUS_NAMES = {
    0: "RAGG_SUCCESS",
    1: "RAGG_ERR_INVALID_ARGUMENT",
    2: "RAGG_ERR_TOO_MANY_BYZANTINE",
    3: "RAGG_ERR_UNSUPPORTED",
    4: "RAGG_ERR_OUT_OF_MEMORY",
    5: "RAGG_ERR_NO_DEVICE",
    6: "RAGG_ERR_CUDA",
    7: "RAGG_ERR_CUBLAS",
    8: "RAGG_ERR_NCCL",
    9: "RAGG_ERR_MPI",
    10: "RAGG_ERR_INTERNAL",
    11: "RAGG_ERR_MISMATCH",
    12: "RAGG_ERR_TRANSPORT",
}

RULES = (
    "mean",
    "median",
    "trimmed_mean",
    "meamed",
    "krum",
    "multi_krum",
    "bulyan",
    "geomed",
    "brute",
    "centered_clip",
    "monna",
    "caf",
    "smea",
)
COORDINATE_WISE = frozenset({"mean", "median", "trimmed_mean", "meamed"})

F32, F16, BF16 = 0, 1, 2
BACKEND_CPU, BACKEND_CUDA = 0, 1
REDUCE = {"mean": 0, "sum": 1}
MODES = {"sharded": 0, "replicated": 1}
DISTANCES = {"gram": 0, "direct": 1, "gram_fp32": 2}
MIX = {"none": 0, "nnm": 1, "bucketing": 2}


class Config(ctypes.Structure):
    """ragg_config_t."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("rule", ctypes.c_int),
        ("f", ctypes.c_int64),
        ("m", ctypes.c_int64),
        ("clip_norm", ctypes.c_double),
        ("tau", ctypes.c_double),
        ("iters", ctypes.c_int64),
        ("cc_center", ctypes.c_void_p),
        ("nu", ctypes.c_double),
        ("max_iters", ctypes.c_int64),
        ("tol", ctypes.c_double),
        ("brute_limit", ctypes.c_int64),
        ("distances", ctypes.c_int),
        ("trusted", ctypes.c_int64),
        ("adaptive_clip", ctypes.c_int32),
        ("mix", ctypes.c_int),
        ("bucket_size", ctypes.c_int64),
        ("seed", ctypes.c_uint64),
    ]


class Report(ctypes.Structure):
    """ragg_report_t."""

    _fields_ = [
        ("capacity", ctypes.c_int64),
        ("scores", ctypes.c_void_p),
        ("weights", ctypes.c_void_p),
        ("selected", ctypes.c_void_p),
        ("nonfinite", ctypes.c_void_p),
    ]


_SIZES = ctypes.POINTER(ctypes.c_size_t)
#: int (*alltoallv)(user, sendbuf, sendcounts, sdispls, recvbuf, recvcounts, rdispls)
ALLTOALLV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, _SIZES, _SIZES,
                             ctypes.c_void_p, _SIZES, _SIZES)
#: int (*allgatherv)(user, buf, counts, displs)
ALLGATHERV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, _SIZES, _SIZES)


class TransportOps(ctypes.Structure):
    """ragg_transport_ops_t (robustagg_transport.h)."""

    _fields_ = [
        ("rank", ctypes.c_int),
        ("size", ctypes.c_int),
        ("user", ctypes.c_void_p),
        ("alltoallv", ALLTOALLV),
        ("allgatherv", ALLGATHERV),
    ]


def _candidates():
    env = os.environ.get("RAGG_LIBRARY")
    if env:
        # An explicit choice is never second-guessed.
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    names = ["librobustagg.so", "librobustagg.dylib", "robustagg.dll"]
    out = [os.path.join(here, "lib", nm) for nm in names]
    # Source tree: python/robustagg/ -> <repo>/build/host/
    repo = os.path.dirname(os.path.dirname(here))
    out += [os.path.join(repo, "build", "host", nm) for nm in names]
    found = ctypes.util.find_library("robustagg")
    if found:
        out.append(found)
    return out, False


_lib = None
_lib_path = None
_load_lock = threading.Lock()


def _declare(lib):
    c_int64, c_void_p, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    P = ctypes.POINTER
    lib.ragg_config_init.argtypes = [P(Config), c_int, c_int64]
    lib.ragg_config_init.restype = None
    lib.ragg_context_create.argtypes = [P(c_void_p), c_int, c_int]
    lib.ragg_context_create.restype = c_int
    lib.ragg_context_destroy.argtypes = [c_void_p]
    lib.ragg_context_destroy.restype = None
    lib.ragg_context_set_stream.argtypes = [c_void_p, c_void_p]
    lib.ragg_context_set_stream.restype = c_int
    lib.ragg_workspace_size.argtypes = [c_void_p, P(Config), c_int, c_int64, c_int64,
                                        P(ctypes.c_size_t)]
    lib.ragg_workspace_size.restype = c_int
    lib.ragg_aggregate.argtypes = [c_void_p, P(Config), c_int, c_void_p, c_int64, c_int64,
                                   c_int64, c_void_p, P(Report)]
    lib.ragg_aggregate.restype = c_int
    lib.ragg_aggregate_ptrs.argtypes = [c_void_p, P(Config), c_int, P(c_void_p), c_int64,
                                        c_int64, c_void_p, P(Report)]
    lib.ragg_aggregate_ptrs.restype = c_int
    lib.ragg_status_string.argtypes = [c_int]
    lib.ragg_status_string.restype = ctypes.c_char_p
    lib.ragg_last_error.argtypes = [c_void_p]
    lib.ragg_last_error.restype = ctypes.c_char_p
    lib.ragg_rule_name.argtypes = [c_int]
    lib.ragg_rule_name.restype = ctypes.c_char_p
    lib.ragg_rule_from_name.argtypes = [ctypes.c_char_p, P(c_int)]
    lib.ragg_rule_from_name.restype = c_int
    lib.ragg_version.argtypes = []
    lib.ragg_version.restype = c_int
    lib.ragg_rule_min_inputs.argtypes = [c_int, c_int64]
    lib.ragg_rule_min_inputs.restype = c_int64
    size_t = ctypes.c_size_t
    lib.ragg_allreduce_transport.argtypes = [c_void_p, P(Config), c_void_p, c_void_p, size_t,
                                             c_int, c_int, c_int, P(TransportOps), P(Report)]
    lib.ragg_allreduce_transport.restype = c_int
    lib.ragg_reduce_scatter_transport.argtypes = [c_void_p, P(Config), c_void_p, c_void_p,
                                                  size_t, c_int, c_int, P(TransportOps),
                                                  P(Report)]
    lib.ragg_reduce_scatter_transport.restype = c_int


def lib():
    """The loaded library (loaded once, on first use)."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _load_lock:
        if _lib is not None:
            return _lib
        paths, explicit = _candidates()
        errors = []
        for p in paths:
            if not explicit and os.sep in p and not os.path.exists(p):
                continue
            try:
                handle = ctypes.CDLL(p)
            except OSError as e:
                errors.append(f"{p}: {e}")
                continue
            _declare(handle)
            _lib, _lib_path = handle, p
            return _lib
        tried = "\n  ".join(errors) if errors else "(no candidate file exists)"
        raise ImportError(
            "robustagg: cannot load librobustagg. Build it (cmake -S . -B build && "
            "cmake --build build) or set RAGG_LIBRARY to the path of librobustagg.so.\n"
            f"  searched: {', '.join(paths)}\n  {tried}"
        )


def library_path():
    """Path of the loaded librobustagg."""
    lib()
    return _lib_path


# ---------------------------------------------------------------- librobustagg_nccl

#: ncclDataType_t of each dtype code (nccl.h: ncclFloat16 6, ncclFloat32 7, ncclBfloat16 9).
NCCL_TYPES = {F32: 7, F16: 6, BF16: 9}

_nccl = None
_nccl_path = None
_nccl_error = None


def _nccl_candidates():
    env = os.environ.get("RAGG_NCCL_LIBRARY")
    if env:
        return [env]
    base = os.path.dirname(os.path.abspath(library_path()))
    out = [os.path.join(base, "librobustagg_nccl.so"),
           os.path.join(base, "dist", "librobustagg_nccl.so")]  # a CMake build tree
    found = ctypes.util.find_library("robustagg_nccl")
    if found:
        out.append(found)
    return out


def _declare_nccl(h):
    c_void_p, c_int, size_t = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    P = ctypes.POINTER
    h.ragg_allreduce_nccl_report.argtypes = [c_void_p, P(Config), c_void_p, c_void_p, size_t,
                                             c_int, c_int, c_int, c_void_p, c_void_p, P(Report)]
    h.ragg_allreduce_nccl_report.restype = c_int
    h.ragg_reduce_scatter_nccl_report.argtypes = [c_void_p, P(Config), c_void_p, c_void_p,
                                                  size_t, c_int, c_int, c_void_p, c_void_p,
                                                  P(Report)]
    h.ragg_reduce_scatter_nccl_report.restype = c_int


def nccl_lib():
    """librobustagg_nccl (the robust all-reduce over NCCL, on device buffers), loaded
    once; None where it cannot be loaded (nccl_error() says why). It never links
    NCCL itself: it uses the libnccl.so.2 already in the process (torch's, when
    torch is imported first) and opens one otherwise."""
    global _nccl, _nccl_path, _nccl_error
    if _nccl is not None or _nccl_error is not None:
        return _nccl
    with _load_lock:
        if _nccl is not None or _nccl_error is not None:
            return _nccl
        errors = []
        for p in _nccl_candidates():
            if os.sep in p and not os.path.exists(p):
                errors.append(f"{p}: no such file")
                continue
            try:
                h = ctypes.CDLL(p)
                _declare_nccl(h)
            except (OSError, AttributeError) as e:
                errors.append(f"{p}: {e}")
                continue
            _nccl, _nccl_path = h, p
            return _nccl
        _nccl_error = ("librobustagg_nccl is not available (it is built where CUDA and nccl.h "
                       "are; RAGG_NCCL_LIBRARY names it): " + "; ".join(errors))
        return None


def nccl_error():
    """Why nccl_lib() is None ("" when it loaded)."""
    nccl_lib()
    return _nccl_error or ""
