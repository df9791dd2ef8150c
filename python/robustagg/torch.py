"""A Byzantine-robust DistributedDataParallel communication hook.

    import robustagg.torch as rt
    state = rt.RobustHookState(rule="trimmed_mean", f=1, mode="sharded", momentum=0.9)
    ddp_model.register_comm_hook(state, rt.robust_allreduce_hook)

Each rank contributes its own, undivided, local gradient bucket; the hook
returns the robust aggregate of the world's buckets in place of their mean
(DDP's usual semantics, so the optimizer and learning rate stay as they are).
The collectives go through torch.distributed (gloo for CPU tensors, nccl for
CUDA tensors), the aggregation through librobustagg on the bucket's device.

Modes:
  "replicated"  all_gather every rank's whole bucket, then every rank
                aggregates the n = world_size rows itself (world_size / 2 times
                an all-reduce's traffic; no rank trusts another's aggregation).
  "sharded"     all_to_all_single so that rank r receives coordinate shard r of
                every rank's bucket, aggregates that shard, then all_gather of
                the aggregated shards (an all-reduce's traffic; every rank trusts
                the others to aggregate honestly). Only coordinate-wise rules
                (mean, median, trimmed_mean, meamed) without a pre-aggregation
                step (clip_norm, adaptive_clip, mix) aggregate shard by shard;
                for every other rule and configuration the hook falls back to
                "replicated" (state.effective_mode tells which runs).

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

from . import _core
from . import _lib as L

__all__ = ["RobustHookState", "robust_allreduce_hook", "HookRecord"]

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
    """

    def __init__(self, rule="median", f=1, mode="sharded", momentum=0.0, process_group=None,
                 record_history=True, history_size=10000, **options):
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
        if dist.is_available() and dist.is_initialized():
            self._check_world(dist.get_world_size(process_group))

    @property
    def effective_mode(self):
        """The mode that runs: "sharded" only for coordinate-wise rules without a
        pre-aggregation step, otherwise "replicated"."""
        if self.mode == "replicated":
            return "replicated"
        if _core._rule_code(self.rule) not in [L.RULES.index(r) for r in L.COORDINATE_WISE]:
            return "replicated"
        if self.options.get("clip_norm") or self.options.get("adaptive_clip"):
            return "replicated"
        if self.options.get("mix", "none") not in ("none", 0):
            return "replicated"
        return "sharded"

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


def robust_allreduce_hook(state, bucket):
    """DDP communication hook: the robust aggregate of every rank's bucket.

    Register with ddp_model.register_comm_hook(state, robust_allreduce_hook).
    Returns a torch.futures.Future holding a tensor shaped like bucket.buffer().
    """
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    state._check_world(world)
    grad = bucket.buffer()
    index = bucket.index()
    send = state._contribution(index, grad)
    step = state.step
    if bucket.is_last():
        state.step += 1
    if state.effective_mode == "sharded":
        fut = _sharded(state, group, world, rank, send, index, step)
    else:
        fut = _replicated(state, group, world, send, index, step)
    return fut
