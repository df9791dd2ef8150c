"""A Byzantine-robust DistributedDataParallel communication hook, and a robust
all-reduce over torch.distributed.

    import robustagg.torch as rt
    state = rt.RobustHookState(rule="trimmed_mean", f=1, mode="sharded", momentum=0.9)
    ddp_model.register_comm_hook(state, rt.robust_allreduce_hook)

    rt.robust_all_reduce(tensor, rule="krum", f=1)   # in place, like dist.all_reduce

Each rank contributes its own, undivided, local gradient bucket; the hook
returns the robust aggregate of the world's buckets in place of their mean
(DDP's usual semantics, so the optimizer and learning rate stay as they are).

CPU buckets (gloo, or any backend that moves CPU tensors): the library's
robust all-reduce (robustagg.allreduce) runs with torch.distributed as its
transport (ProcessGroupTransport), so every rule and pre-step runs in either
mode, with the same bits on every rank:
  "sharded"     all_to_all_single so that rank r receives coordinate shard r of
                every rank's bucket, aggregates that shard (Gram-space rules and
                pre-steps first all-gather a world x world matrix of partial Gram
                sums, so every rank solves the same problem), then an all-gather
                of the aggregated shards: an all-reduce's traffic; every rank
                trusts the others to aggregate their shard honestly.
  "replicated"  all_gather every rank's whole bucket, then every rank aggregates
                the n = world_size rows itself (world_size / 2 times an
                all-reduce's traffic; no rank trusts another's aggregation).
CUDA buckets (nccl): the library's robust all-reduce over NCCL
(librobustagg_nccl's ragg_allreduce_nccl) on the communicator torch's NCCL
backend already holds (ProcessGroupNCCL.comm_ptr()), stream-ordered on the
current stream: every rule and pre-step in either mode, as for CPU buckets.
Where that cannot run (librobustagg_nccl not built, a torch that does not lend
its communicator, a backend other than NCCL, or nccl=False), torch.distributed
collectives and librobustagg's CUDA backend on the device: "sharded" then
applies to the coordinate-wise rules (mean, median, trimmed_mean, meamed)
without a pre-aggregation step (clip_norm, adaptive_clip, mix), and every other
configuration runs "replicated". state.mode_for(device) says which mode runs;
each HookRecord names it (and state.path_for(device) which path).

momentum=beta > 0 makes each rank send its worker momentum
m_t = beta m_{t-1} + (1 - beta) g_t (m_0 = 0) per bucket instead of g_t
(Karimireddy, He & Jaggi 2021: robust rules without it fail against
time-coupled attacks such as ALIE); drop the optimizer's own momentum then.
DDP rebuilds its buckets after the first iteration, so momentum starts again
from zero once, on the second step.

Thresholds (clip_norm, tau, nu) apply to the undivided local gradients.
"""

import collections
import dataclasses

import torch
import torch.distributed as dist

from . import _collective
from . import _core
from . import _lib as L

__all__ = ["RobustHookState", "robust_allreduce_hook", "HookRecord", "ProcessGroupTransport",
           "robust_all_reduce"]

_PREAGGREGATION = ("clip_norm", "adaptive_clip", "mix")


@dataclasses.dataclass
class HookRecord:
    """One bucket of one step: what the rule decided.

    excluded: ranks the rule gave no weight (Gram-space rules, replicated
    mode); empty for coordinate-wise rules, which exclude per coordinate (their
    report.scores give each rank's fraction of trimmed coordinates, over the
    whole bucket in replicated mode and over this rank's shard in sharded mode).
    """

    step: int
    bucket: int
    mode: str
    excluded: tuple
    report: _core.Report


class RobustHookState:
    """Configuration and running state of robust_allreduce_hook.

    rule, f and **options are those of robustagg.aggregate (checked here);
    mode is "sharded" or "replicated"; momentum is the worker momentum beta in
    [0, 1); process_group defaults to the world. history holds a HookRecord per
    bucket and step (the last history_size of them) when record_history is set.
    nccl=False keeps CUDA buckets off the library's NCCL path (see path_for);
    nccl_unavailable says why that path did not run, when it did not.
    """

    def __init__(self, rule="median", f=1, mode="sharded", momentum=0.0, process_group=None,
                 record_history=True, history_size=10000, nccl=True, **options):
        _core.make_config(rule, f, options)  # unknown rule/option or bad value: raise now
        if mode not in ("sharded", "replicated"):
            raise _core._arg_error(f"mode={mode!r}: 'sharded' or 'replicated'")
        if not 0.0 <= float(momentum) < 1.0:
            raise _core._arg_error(f"momentum={momentum!r}: must be in [0, 1)")
        self.rule = rule
        self.f = int(f)
        self.mode = mode
        self.momentum = float(momentum)
        self.options = dict(options)
        self.process_group = process_group
        self.record_history = record_history
        self.history = collections.deque(maxlen=history_size)
        self.step = 0
        self._momentum = {}
        self._checked_world = None
        self._last_mode = None
        self._transports = {}
        self.nccl = bool(nccl)
        self.nccl_unavailable = ""
        self._comms = {}
        # CPU buckets take the library's transport path; False sends them down
        # the torch.distributed path of CUDA buckets (tests run it on CPU).
        self._host_path = True
        if dist.is_available() and dist.is_initialized():
            self._check_world(dist.get_world_size(process_group))

    def path_for(self, device):
        """Which path runs for buckets on `device`: "library" (CPU buckets: the
        library's robust all-reduce over torch.distributed), "nccl" (CUDA buckets:
        the library's robust all-reduce over torch's NCCL communicator) or
        "collectives" (torch.distributed collectives around robustagg.aggregate)."""
        device = torch.device(device)
        if device.type == "cpu":
            return "library" if self._host_path else "collectives"
        return "nccl" if self._nccl_comm(self._group(), device) is not None else "collectives"

    def mode_for(self, device):
        """The mode that runs for buckets on `device` ("cpu", "cuda" or a torch.device):
        the library's paths run every configuration in the mode asked for; the
        collectives path shards only coordinate-wise rules without a pre-aggregation
        step."""
        if self.path_for(device) != "collectives":
            return self.mode
        return self._collectives_mode()

    def _group(self):
        return self.process_group if self.process_group is not None else dist.group.WORLD

    def _nccl_comm(self, group, device):
        """torch's ncclComm_t of `group` on `device` as an int, or None where the
        NCCL path cannot run (the reason in self.nccl_unavailable). A missing
        library or backend stays missing; a communicator torch has not created
        yet (it does so on the group's first collective) is asked for again."""
        key = (id(group), device.index)
        if key in self._comms:
            return self._comms[key]
        if self.nccl:
            comm, why, final = _lent_comm(group, device)
        else:
            comm, why, final = None, "nccl=False", True
        self.nccl_unavailable = why
        if final:
            self._comms[key] = comm
        return comm

    def _collectives_mode(self):
        """The mode of the torch.distributed path (CUDA buckets)."""
        if self.mode == "replicated":
            return "replicated"
        if _core._rule_code(self.rule) not in [L.RULES.index(r) for r in L.COORDINATE_WISE]:
            return "replicated"
        if self.options.get("clip_norm") or self.options.get("adaptive_clip"):
            return "replicated"
        if self.options.get("mix", "none") not in ("none", 0):
            return "replicated"
        return "sharded"

    @property
    def effective_mode(self):
        """The mode the last bucket ran in (before the first: the mode for CPU buckets)."""
        return self._last_mode or self.mode_for("cpu")

    def _check_world(self, world):
        if self._checked_world == world:
            return
        need = _core.min_inputs(self.rule, self.f)
        if world < need:
            raise _core.RaggArgumentError(
                L.ERR_TOO_MANY_BYZANTINE, "RAGG_ERR_TOO_MANY_BYZANTINE",
                f"world size {world} is too small for rule {self.rule!r} with f = {self.f}: "
                f"it needs at least {need} ranks (lower f or use more ranks)")
        self._checked_world = world

    def _contribution(self, index, grad):
        if self.momentum == 0.0:
            return grad
        m = self._momentum.get(index)
        if m is None or m.shape != grad.shape or m.dtype != grad.dtype or m.device != grad.device:
            m = torch.zeros_like(grad)
            self._momentum[index] = m
        m.mul_(self.momentum).add_(grad, alpha=1.0 - self.momentum)
        return m

    def _transport(self, group):
        t = self._transports.get(group)
        if t is None:
            t = self._transports[group] = ProcessGroupTransport(group)
        return t

    def _record(self, step, bucket_index, mode, report):
        if not self.record_history:
            return
        excluded = tuple(int(i) for i in report.excluded)
        self.history.append(HookRecord(step, bucket_index, mode, excluded, report))


def _aggregate(state, rows):
    return _core.aggregate(rows, rule=state.rule, f=state.f,
                           return_report=state.record_history, **state.options)


def _replicated(state, group, world, send, index, step):
    numel = send.numel()
    gathered = torch.empty(world * numel, dtype=send.dtype, device=send.device)
    work = dist.all_gather_into_tensor(gathered, send, group=group, async_op=True)

    def finish(fut):
        fut.wait()
        res = _aggregate(state, gathered.view(world, numel))
        if state.record_history:
            res, report = res
            state._record(step, index, "replicated", report)
        return res

    return work.get_future().then(finish)


def _sharded(state, group, world, rank, send, index, step):
    numel = send.numel()
    base, extra = divmod(numel, world)
    sizes = [base + (1 if r < extra else 0) for r in range(world)]
    mine = sizes[rank]
    recv = torch.empty(world * mine, dtype=send.dtype, device=send.device)
    dist.all_to_all_single(recv, send, output_split_sizes=[mine] * world,
                           input_split_sizes=sizes, group=group)
    width = base + (1 if extra else 0)
    padded = torch.zeros(width, dtype=send.dtype, device=send.device)
    if mine > 0:
        res = _aggregate(state, recv.view(world, mine))
        if state.record_history:
            res, report = res
            state._record(step, index, "sharded", report)
        padded[:mine] = res
    gathered = torch.empty(world * width, dtype=send.dtype, device=send.device)
    work = dist.all_gather_into_tensor(gathered, padded, group=group, async_op=True)

    def finish(fut):
        fut.wait()
        rows = gathered.view(world, width)
        return torch.cat([rows[r, :sizes[r]] for r in range(world)])

    return work.get_future().then(finish)


def _lent_comm(group, device):
    """(comm, why, final): torch's ncclComm_t of `group` on `device` as an int (None,
    and why, where the library's NCCL path cannot run; final: whether asking again
    could change the answer)."""
    if L.nccl_lib() is None:
        return None, L.nccl_error(), True
    if not _core.cuda_available():
        return None, "librobustagg has no CUDA backend, or no CUDA device is visible", True
    try:
        backend = group._get_backend(device)
        ptr = getattr(backend, "comm_ptr", None) or getattr(backend, "_comm_ptr", None)
        if ptr is None:
            return None, f"torch's {type(backend).__name__} lends no NCCL communicator", True
        with torch.cuda.device(device):
            comm = int(ptr())
    except Exception as e:  # noqa: BLE001 - any failure means: not this time
        return None, f"{type(e).__name__}: {e}", False
    if not comm:
        return None, "torch's NCCL communicator is not created yet", False
    return comm, "", True


def _on_nccl(state, group, world, send, index, step, comm):
    """The library's robust all-reduce over torch's NCCL communicator, every rule in
    either mode, queued on the current stream."""
    out = torch.empty_like(send)
    res = _collective.allreduce_nccl(send, state.rule, state.f, comm=comm, size=world,
                                     mode=state.mode, out=out,
                                     return_report=state.record_history, **state.options)
    if state.record_history:
        state._record(step, index, state.mode, res[1])
    fut = torch.futures.Future(devices=[send.device])
    fut.set_result(out)
    return fut


def _on_host(state, group, send, index, step):
    """The library's robust all-reduce over torch.distributed, every rule in either mode."""
    out = torch.empty_like(send)
    res = _collective.allreduce(send, state.rule, state.f, transport=state._transport(group),
                                mode=state.mode, out=out, return_report=state.record_history,
                                **state.options)
    if state.record_history:
        state._record(step, index, state.mode, res[1])
    fut = torch.futures.Future()
    fut.set_result(out)
    return fut


def robust_allreduce_hook(state, bucket):
    """DDP communication hook: the robust aggregate of every rank's bucket.

    Register with ddp_model.register_comm_hook(state, robust_allreduce_hook).
    Returns a torch.futures.Future holding a tensor shaped like bucket.buffer().
    """
    group = state._group()
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    state._check_world(world)
    grad = bucket.buffer()
    index = bucket.index()
    send = state._contribution(index, grad)
    step = state.step
    if bucket.is_last():
        state.step += 1
    # the path_for decision, with torch asked for its communicator once
    if send.device.type == "cuda":
        comm = state._nccl_comm(group, send.device)
        if comm is not None:
            state._last_mode = state.mode
            return _on_nccl(state, group, world, send, index, step, comm)
    elif send.device.type == "cpu" and state._host_path:
        state._last_mode = state.mode
        return _on_host(state, group, send, index, step)
    state._last_mode = mode = state._collectives_mode()
    if mode == "sharded":
        fut = _sharded(state, group, world, rank, send, index, step)
    else:
        fut = _replicated(state, group, world, send, index, step)
    return fut


def _packed(counts, displs):
    at = 0
    for c, d in zip(counts, displs):
        if c and d != at:
            return False
        at += c
    return True


class ProcessGroupTransport(_collective.Transport):
    """robustagg.Transport over a torch.distributed process group, for host
    memory: all_to_all_single and all_gather_into_tensor on uint8 CPU tensors
    that share the library's buffers (gloo, or any backend that moves CPU
    tensors). Uneven all-gather blocks travel padded to the largest block."""

    def __init__(self, group=None):
        self.group = group if group is not None else dist.group.WORLD
        self.rank = dist.get_rank(self.group)
        self.size = dist.get_world_size(self.group)

    def alltoallv(self, send, send_counts, send_displs, recv, recv_counts, recv_displs):
        s, r = torch.from_numpy(send), torch.from_numpy(recv)
        if not _packed(send_counts, send_displs):
            s = torch.cat([s[d:d + c] for c, d in zip(send_counts, send_displs)])
        else:
            s = s[:sum(send_counts)]
        direct = _packed(recv_counts, recv_displs)
        out = r[:sum(recv_counts)] if direct else torch.empty(sum(recv_counts), dtype=torch.uint8)
        dist.all_to_all_single(out, s, output_split_sizes=list(recv_counts),
                               input_split_sizes=list(send_counts), group=self.group)
        if not direct:
            at = 0
            for c, d in zip(recv_counts, recv_displs):
                r[d:d + c] = out[at:at + c]
                at += c

    def allgatherv(self, buf, counts, displs):
        b = torch.from_numpy(buf)
        width = max(counts)
        if width == 0:
            return
        me = self.rank
        if all(c == width for c in counts) and _packed(counts, displs):
            # equal blocks in rank order: gather straight into the buffer
            mine = b[displs[me]:displs[me] + width].clone()
            dist.all_gather_into_tensor(b[:self.size * width], mine, group=self.group)
            return
        mine = torch.zeros(width, dtype=torch.uint8)
        mine[:counts[me]] = b[displs[me]:displs[me] + counts[me]]
        gathered = torch.empty(self.size * width, dtype=torch.uint8)
        dist.all_gather_into_tensor(gathered, mine, group=self.group)
        for p, (c, d) in enumerate(zip(counts, displs)):
            if p != me and c:
                b[d:d + c] = gathered[p * width:p * width + c]


def robust_all_reduce(tensor, rule="median", f=1, mode="sharded", group=None, reduce="mean",
                      return_report=False, **options):
    """In place, like dist.all_reduce: tensor <- the robust aggregate of every rank's
    tensor (reduce="mean"), or world_size times it ("sum"). A contiguous tensor of
    float32, float16 or bfloat16: on the CPU over torch.distributed (gloo), on a
    CUDA device over the NCCL communicator of torch's NCCL backend (queued on the
    current stream); every rank passes the same shape, dtype, rule, f, mode and
    options, and gets the same bits. Returns the Report (the same on every rank)
    with return_report=True, else None."""
    if not tensor.is_contiguous():
        raise _core._arg_error("robust_all_reduce needs a contiguous tensor")
    flat = tensor.view(-1)
    if tensor.device.type == "cuda":
        g = group if group is not None else dist.group.WORLD
        comm, why, _ = _lent_comm(g, tensor.device)
        if comm is None:
            raise _core.RaggError(L.ERR_UNSUPPORTED, "RAGG_ERR_UNSUPPORTED",
                                  f"robust_all_reduce on a CUDA tensor runs over torch's NCCL "
                                  f"communicator, which is not available here: {why}")
        res = _collective.allreduce_nccl(flat, rule, f, comm=comm, size=dist.get_world_size(g),
                                         mode=mode, reduce=reduce, out=flat,
                                         return_report=return_report, **options)
        return res[1] if return_report else None
    if tensor.device.type != "cpu":
        raise _core._arg_error(f"robust_all_reduce takes CPU or CUDA tensors, got one on "
                               f"{tensor.device}")
    t = ProcessGroupTransport(group)
    res = _collective.allreduce(flat, rule, f, transport=t, mode=mode, reduce=reduce, out=flat,
                                return_report=return_report, **options)
    return res[1] if return_report else None
