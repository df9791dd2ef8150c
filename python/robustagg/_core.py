"""robustagg.aggregate: NumPy, PyTorch and CuPy inputs onto ragg_aggregate."""

import ctypes
import dataclasses
import sys
import threading

import numpy as np

from . import _lib as L


class RaggError(Exception):
    """A call into librobustagg failed.

    Attributes: ``status`` (the ragg_status_t code), ``name`` (its enum name,
    e.g. ``"RAGG_ERR_UNSUPPORTED"``) and ``message`` (the library's
    ragg_last_error text: the argument, its value and the bound it broke).
    """

    def __init__(self, status, name, message):
        self.status = int(status)
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}" if message else name)


class RaggArgumentError(RaggError, ValueError):
    """RAGG_ERR_INVALID_ARGUMENT or RAGG_ERR_TOO_MANY_BYZANTINE, or an argument
    refused in Python before the call (shape, dtype, layout, option)."""


def _arg_error(message):
    return RaggArgumentError(L.ERR_INVALID_ARGUMENT, "RAGG_ERR_INVALID_ARGUMENT", message)


def _raise_status(status, ctx=None):
    lib = L.lib()
    name = L.STATUS_NAMES.get(status, f"status {status}")
    msg = ""
    if ctx:
        m = lib.ragg_last_error(ctx)
        msg = m.decode(errors="replace") if m else ""
    if not msg:
        raw = lib.ragg_status_string(status)
        msg = raw.decode(errors="replace") if raw else ""
    cls = RaggArgumentError if status in (L.ERR_INVALID_ARGUMENT,
                                          L.ERR_TOO_MANY_BYZANTINE) else RaggError
    raise cls(status, name, msg)


@dataclasses.dataclass
class Report:
    """What a call decided, per input (the audit trail), as NumPy arrays of length n.

    scores    float64: Krum family: the Krum score (Bulyan: first round);
              geomed, centered_clip, mean, brute, monna, caf, smea: ||x_i - output||;
              coordinate-wise rules: the fraction of coordinates at which x_i was
              trimmed (below the (f+1)-th smallest or above the (f+1)-th largest).
    weights   float64: alpha_i of the output for Gram-space rules and mean;
              NaN where the rule does not define one (coordinate-wise rules, Bulyan).
    selected  int32: 1 contributed, 0 excluded, -1 for coordinate-wise rules.
    nonfinite int64: count of NaN/Inf values in each input.
    """

    scores: np.ndarray
    weights: np.ndarray
    selected: np.ndarray
    nonfinite: np.ndarray

    @property
    def excluded(self):
        """Indices of the inputs the rule excluded (selected == 0)."""
        return np.flatnonzero(self.selected == 0)


# ---------------------------------------------------------------- contexts

class _Context:
    __slots__ = ("handle", "lock")

    def __init__(self, handle):
        self.handle = handle
        self.lock = threading.Lock()


_contexts = {}
_contexts_lock = threading.Lock()
_cuda_state = {}


def _context(backend, device, stream):
    """One context per (backend, device, stream), created on first use. A context
    is not thread-safe, so each call holds its lock."""
    key = (backend, device, stream)
    ctx = _contexts.get(key)
    if ctx is not None:
        return ctx
    with _contexts_lock:
        ctx = _contexts.get(key)
        if ctx is not None:
            return ctx
        lib = L.lib()
        h = ctypes.c_void_p()
        st = lib.ragg_context_create(ctypes.byref(h), backend, device)
        if st != L.SUCCESS:
            if backend == L.BACKEND_CUDA and st in (L.ERR_UNSUPPORTED, L.ERR_NO_DEVICE):
                raise RaggError(st, L.STATUS_NAMES.get(st, str(st)),
                                f"a CUDA array was passed but librobustagg ({L.library_path()}) "
                                "has no usable CUDA backend (built with RAGG_ENABLE_CUDA=OFF, "
                                "or no device). Move the data to the host memory first.")
            _raise_status(st, h)
        if backend == L.BACKEND_CUDA:
            st = lib.ragg_context_set_stream(h, ctypes.c_void_p(stream or None))
            if st != L.SUCCESS:
                lib.ragg_context_destroy(h)
                _raise_status(st)
        ctx = _Context(h)
        _contexts[key] = ctx
        return ctx


def cuda_available():
    """True when the loaded librobustagg has a CUDA backend and a device."""
    if "ok" not in _cuda_state:
        lib = L.lib()
        h = ctypes.c_void_p()
        st = lib.ragg_context_create(ctypes.byref(h), L.BACKEND_CUDA, 0)
        if st == L.SUCCESS:
            lib.ragg_context_destroy(h)
        _cuda_state["ok"] = st == L.SUCCESS
    return _cuda_state["ok"]


# ---------------------------------------------------------------- array kinds

class _Arr:
    """A 2-D or 1-D array of any supported kind, seen as pointers and sizes."""

    __slots__ = ("kind", "obj", "dtype", "ptr", "shape", "strides", "backend", "device",
                 "stream", "itemsize")


def _torch_mod():
    return sys.modules.get("torch")


def _cupy_mod():
    return sys.modules.get("cupy")


_NP_DTYPES = {np.dtype(np.float32): L.F32, np.dtype(np.float16): L.F16}


def _numpy_dtype_code(dt):
    if dt in _NP_DTYPES:
        return _NP_DTYPES[dt]
    if dt.name == "bfloat16" and dt.itemsize == 2:  # ml_dtypes.bfloat16
        return L.BF16
    raise _arg_error(f"dtype {dt} is not supported: use float32, float16 or bfloat16 "
                     "(for example x.astype(np.float32))")


def _wrap(x):
    a = _Arr()
    a.obj = x
    t = _torch_mod()
    cp = _cupy_mod()
    if isinstance(x, np.ndarray):
        a.kind = "numpy"
        a.dtype = _numpy_dtype_code(x.dtype)
        a.itemsize = x.dtype.itemsize
        a.ptr = x.ctypes.data
        a.shape = x.shape
        a.strides = tuple(s // a.itemsize if s % a.itemsize == 0 else None for s in x.strides)
        a.backend, a.device, a.stream = L.BACKEND_CPU, 0, 0
        return a
    if t is not None and isinstance(x, t.Tensor):
        a.kind = "torch"
        codes = {t.float32: L.F32, t.float16: L.F16, t.bfloat16: L.BF16}
        if x.dtype not in codes:
            raise _arg_error(f"dtype {x.dtype} is not supported: use torch.float32, "
                             "torch.float16 or torch.bfloat16")
        if x.layout != t.strided:
            raise _arg_error(f"layout {x.layout} is not supported: pass a dense (strided) tensor")
        a.dtype = codes[x.dtype]
        a.itemsize = x.element_size()
        a.ptr = x.data_ptr()
        a.shape = tuple(x.shape)
        a.strides = tuple(x.stride())
        if x.device.type == "cpu":
            a.backend, a.device, a.stream = L.BACKEND_CPU, 0, 0
        elif x.device.type == "cuda":
            a.backend = L.BACKEND_CUDA
            a.device = x.device.index if x.device.index is not None else t.cuda.current_device()
            a.stream = t.cuda.current_stream(a.device).cuda_stream
        else:
            raise _arg_error(f"tensors on device {x.device} are not supported (cpu or cuda)")
        return a
    if cp is not None and isinstance(x, cp.ndarray):
        a.kind = "cupy"
        if x.dtype == np.float32:
            a.dtype = L.F32
        elif x.dtype == np.float16:
            a.dtype = L.F16
        else:
            raise _arg_error(f"dtype {x.dtype} is not supported: use float32 or float16")
        a.itemsize = x.dtype.itemsize
        a.ptr = x.data.ptr
        a.shape = x.shape
        a.strides = tuple(s // a.itemsize if s % a.itemsize == 0 else None for s in x.strides)
        a.backend, a.device = L.BACKEND_CUDA, x.device.id
        a.stream = cp.cuda.get_current_stream().ptr
        return a
    raise TypeError(f"robustagg.aggregate: unsupported input type {type(x).__name__}: pass a "
                    "NumPy array, a torch tensor, a CuPy array of shape (n, d), or a list of "
                    "n 1-D arrays")


def _empty_like(a, shape, dtype_code=None):
    """A new array of a's kind, device and dtype."""
    if a.kind == "numpy":
        return np.empty(shape, dtype=a.obj.dtype)
    if a.kind == "torch":
        return _torch_mod().empty(shape, dtype=a.obj.dtype, device=a.obj.device)
    cp = _cupy_mod()
    with cp.cuda.Device(a.device):
        return cp.empty(shape, dtype=a.obj.dtype)


def _aux_arrays(a, n):
    """The report's four arrays on a's device, plus a function returning them as NumPy."""
    if a.backend == L.BACKEND_CPU:
        arrs = (np.full(n, np.nan), np.full(n, np.nan), np.full(n, -1, np.int32),
                np.zeros(n, np.int64))
        ptrs = [x.ctypes.data for x in arrs]
        return arrs, ptrs, lambda: arrs
    if a.kind == "torch":
        t = _torch_mod()
        dev = a.obj.device
        arrs = (t.full((n,), float("nan"), dtype=t.float64, device=dev),
                t.full((n,), float("nan"), dtype=t.float64, device=dev),
                t.full((n,), -1, dtype=t.int32, device=dev),
                t.zeros((n,), dtype=t.int64, device=dev))
        return arrs, [x.data_ptr() for x in arrs], lambda: tuple(x.cpu().numpy() for x in arrs)
    cp = _cupy_mod()
    with cp.cuda.Device(a.device):
        arrs = (cp.full(n, np.nan), cp.full(n, np.nan), cp.full(n, -1, np.int32),
                cp.zeros(n, np.int64))
    return arrs, [x.data.ptr for x in arrs], lambda: tuple(cp.asnumpy(x) for x in arrs)


# ---------------------------------------------------------------- config

_INT_OPTIONS = ("m", "iters", "max_iters", "brute_limit", "trusted", "bucket_size", "seed")
_FLOAT_OPTIONS = ("clip_norm", "tau", "nu", "tol")
OPTIONS = _INT_OPTIONS + _FLOAT_OPTIONS + ("cc_center", "distances", "adaptive_clip", "mix")


def _rule_code(rule):
    if isinstance(rule, str):
        key = rule.strip().lower().replace("-", "_")
        if key in L.RULES:
            return L.RULES.index(key)
        raise _arg_error(f"unknown rule {rule!r}: one of {', '.join(L.RULES)}")
    if isinstance(rule, (int, np.integer)) and 0 <= int(rule) < len(L.RULES):
        return int(rule)
    raise _arg_error(f"unknown rule {rule!r}: one of {', '.join(L.RULES)}")


def _enum_option(name, value, table):
    if isinstance(value, str) and value.lower() in table:
        return table[value.lower()]
    if isinstance(value, (int, np.integer)) and int(value) in table.values():
        return int(value)
    raise _arg_error(f"{name}={value!r}: one of {', '.join(repr(k) for k in table)}")


def make_config(rule, f, options):
    """A filled ragg_config_t (C defaults from ragg_config_init, then the options)."""
    lib = L.lib()
    code = _rule_code(rule)
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 0:
        raise _arg_error(f"f={f!r}: must be an integer >= 0")
    cfg = L.Config()
    lib.ragg_config_init(ctypes.byref(cfg), code, int(f))
    for key, value in options.items():
        if key in _INT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise _arg_error(f"{key}={value!r}: must be an integer")
            setattr(cfg, key, int(value))
        elif key in _FLOAT_OPTIONS:
            try:
                setattr(cfg, key, float(value))
            except (TypeError, ValueError):
                raise _arg_error(f"{key}={value!r}: must be a number") from None
        elif key == "distances":
            cfg.distances = _enum_option(key, value, L.DISTANCES)
        elif key == "mix":
            cfg.mix = _enum_option(key, value, L.MIX)
        elif key == "adaptive_clip":
            cfg.adaptive_clip = 1 if value else 0
        elif key == "cc_center":
            pass  # a pointer, set where the input's memory is known
        else:
            raise TypeError(f"robustagg.aggregate: unknown option {key!r}; options are "
                            f"{', '.join(OPTIONS)}")
    return cfg


def config_defaults(rule="mean", f=0):
    """The C defaults (ragg_config_init) as a dict of option values."""
    cfg = make_config(rule, f, {})
    out = {k: getattr(cfg, k) for k in _INT_OPTIONS + _FLOAT_OPTIONS}
    out["distances"] = {v: k for k, v in L.DISTANCES.items()}[cfg.distances]
    out["mix"] = {v: k for k, v in L.MIX.items()}[cfg.mix]
    out["adaptive_clip"] = bool(cfg.adaptive_clip)
    out["cc_center"] = None
    return out


# ---------------------------------------------------------------- aggregate

def _same_place(a, b, what):
    if a.kind != b.kind or a.backend != b.backend or a.device != b.device:
        raise _arg_error(f"{what} must be the same kind of array on the same device as the "
                         f"first input ({a.kind}, backend {a.backend}, device {a.device}); got "
                         f"{b.kind}, backend {b.backend}, device {b.device}")
    if a.dtype != b.dtype:
        raise _arg_error(f"{what} must have the input's dtype {a.obj.dtype}, got {b.obj.dtype}")


def _center(cfg, first, d, options):
    c = options.get("cc_center")
    if c is None:
        return None
    ca = _wrap(c)
    _same_place(first, ca, "cc_center")
    if len(ca.shape) != 1 or ca.shape[0] != d or (d > 1 and ca.strides[0] != 1):
        raise _arg_error(f"cc_center must be a contiguous 1-D array of d = {d} values, got "
                         f"shape {tuple(ca.shape)}")
    cfg.cc_center = ca.ptr
    return ca


def _check_matrix(a):
    if len(a.shape) != 2:
        raise _arg_error(f"x must be 2-D (n inputs x d values), got shape {tuple(a.shape)}; "
                         "a list of 1-D arrays is accepted too")
    n, d = a.shape
    if n < 1 or d < 1:
        raise _arg_error(f"x must have n >= 1 rows and d >= 1 columns, got shape {(n, d)}")
    s0, s1 = a.strides
    if d > 1 and s1 != 1:
        raise _arg_error(f"x's rows must be contiguous (last-dimension stride 1), got strides "
                         f"{a.strides} in elements; pass a row-major copy "
                         "(np.ascontiguousarray(x) or x.contiguous())")
    if n == 1:
        return n, d, d
    if s0 is None or s0 < d:
        raise _arg_error(f"x's row stride {s0} (elements) must be >= d = {d}: rows that overlap "
                         "or run backwards cannot be passed as a leading dimension; pass a "
                         "row-major copy")
    return n, d, s0


def _call(fn, ctx, *args):
    with ctx.lock:
        st = fn(ctx.handle, *args)
        if st != L.SUCCESS:
            _raise_status(st, ctx.handle)


def aggregate(x, rule="krum", f=2, return_report=False, **options):
    """Robust aggregate of n inputs of d values.

    x: an (n, d) NumPy array (float32, float16, or ml_dtypes bfloat16), a torch
    tensor (CPU; CUDA when the library has a CUDA backend, ordered on
    torch.cuda.current_stream()), a CuPy array, or a list of n 1-D arrays of
    the same length, dtype and device. Rows must be contiguous; the row stride
    is passed to the library as its leading dimension, so nothing is copied.

    rule: one of robustagg.rules. f: the number of Byzantine inputs to tolerate.
    options: the ragg_config_t fields m, clip_norm, tau, iters, cc_center, nu,
    max_iters, tol, brute_limit, distances ("gram"/"direct"/"gram_fp32"), trusted,
    adaptive_clip, mix ("none"/"nnm"/"bucketing"), bucket_size, seed; the
    defaults are the C library's (see robustagg.config_defaults()).

    Returns the aggregate, a 1-D array of d values of x's kind, dtype and device;
    with return_report=True, the pair (aggregate, Report).
    """
    lib = L.lib()
    cfg = make_config(rule, f, options)
    if isinstance(x, (list, tuple)):
        return _aggregate_rows(lib, cfg, x, return_report, options)
    a = _wrap(x)
    n, d, ld = _check_matrix(a)
    _center(cfg, a, d, options)
    out = _empty_like(a, (d,))
    out_a = _wrap(out)
    ctx = _context(a.backend, a.device, a.stream)
    rep, fetch = _report(a, n, return_report)
    _call(lib.ragg_aggregate, ctx, ctypes.byref(cfg), a.dtype, ctypes.c_void_p(a.ptr), n, d, ld,
          ctypes.c_void_p(out_a.ptr), rep)
    return (out, fetch()) if return_report else out


def _report(a, n, wanted):
    if not wanted:
        return None, None
    arrs, ptrs, to_numpy = _aux_arrays(a, n)
    rep = L.Report(n, *ptrs)

    def fetch(_keep=arrs):
        return Report(*to_numpy())

    return ctypes.byref(rep), fetch


def _aggregate_rows(lib, cfg, rows, return_report, options):
    n = len(rows)
    if n < 1:
        raise _arg_error("the list of inputs is empty")
    wrapped = [_wrap(r) for r in rows]
    first = wrapped[0]
    if len(first.shape) != 1:
        raise _arg_error(f"each input in a list must be 1-D, input 0 has shape {first.shape}")
    d = first.shape[0]
    if d < 1:
        raise _arg_error("inputs must hold d >= 1 values")
    for i, w in enumerate(wrapped):
        _same_place(first, w, f"input {i}")
        if len(w.shape) != 1 or w.shape[0] != d:
            raise _arg_error(f"input {i} has shape {tuple(w.shape)}, expected ({d},) like input 0")
        if d > 1 and w.strides[0] != 1:
            raise _arg_error(f"input {i} is not contiguous (stride {w.strides[0]}); pass a "
                             "contiguous copy")
    _center(cfg, first, d, options)
    ptrs = (ctypes.c_void_p * n)(*[w.ptr for w in wrapped])
    out = _empty_like(first, (d,))
    out_a = _wrap(out)
    ctx = _context(first.backend, first.device, first.stream)
    rep, fetch = _report(first, n, return_report)
    _call(lib.ragg_aggregate_ptrs, ctx, ctypes.byref(cfg), first.dtype, ptrs, n, d,
          ctypes.c_void_p(out_a.ptr), rep)
    return (out, fetch()) if return_report else out


def min_inputs(rule, f):
    """The smallest n the rule accepts for f (ragg_rule_min_inputs)."""
    return int(L.lib().ragg_rule_min_inputs(_rule_code(rule), int(f)))


def version():
    """Version string of the loaded C library, e.g. "0.1.0"."""
    code = L.lib().ragg_version()
    return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
