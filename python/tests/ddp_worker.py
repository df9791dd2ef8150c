"""Multi-process gloo training used by test_torch_hook.py (run under torch.multiprocessing)."""

import json
import math
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel as DDP

import robustagg
import robustagg.torch as rt

BYZANTINE_RANK = 3


def _corrupt(buf, attack):
    if attack == "sign_flip":
        buf.mul_(-10.0)  # sign-flipped and scaled: enough to turn the mean into ascent
    elif attack == "nan":
        buf.fill_(float("nan"))


def _train(rank, world, hook, state, attack, steps=60):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    ddp = DDP(model, bucket_cap_mb=0.001)  # several small buckets, uneven shards
    byzantine = rank == BYZANTINE_RANK and attack != "none"

    def wrapped(st, bucket):
        if byzantine:
            _corrupt(bucket.buffer(), attack)
        if hook == "default":
            return default_hooks.allreduce_hook(st, bucket)
        return rt.robust_allreduce_hook(st, bucket)

    ddp.register_comm_hook(state, wrapped)
    gen = torch.Generator().manual_seed(1234)
    w_true = torch.randn(20, 1, generator=gen)
    gen_local = torch.Generator().manual_seed(100 + rank)
    x_test = torch.randn(256, 20, generator=gen)
    y_test = x_test @ w_true
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    with torch.no_grad():
        loss0 = float(torch.nn.functional.mse_loss(model(x_test), y_test))
    for _ in range(steps):
        x = torch.randn(64, 20, generator=gen_local)
        y = x @ w_true + 0.01 * torch.randn(64, 1, generator=gen_local)
        opt.zero_grad()
        torch.nn.functional.mse_loss(ddp(x), y).backward()
        opt.step()
    with torch.no_grad():
        loss = float(torch.nn.functional.mse_loss(model(x_test), y_test))
    return loss0, loss


# (name, hook, attack, RobustHookState kwargs)
SCENARIOS = [
    ("default-none", "default", "none", None),
    ("default-sign_flip", "default", "sign_flip", None),
    ("default-nan", "default", "nan", None),
    ("trimmed_mean-sharded-sign_flip", "robust", "sign_flip",
     dict(rule="trimmed_mean", f=1, mode="sharded")),
    ("median-sharded-nan", "robust", "nan", dict(rule="median", f=1, mode="sharded")),
    ("meamed-sharded-momentum-sign_flip", "robust", "sign_flip",
     dict(rule="meamed", f=1, mode="sharded", momentum=0.5)),
    ("geomed-replicated-sign_flip", "robust", "sign_flip",
     dict(rule="geomed", f=1, mode="replicated")),
    ("geomed-sharded-sign_flip", "robust", "sign_flip",
     dict(rule="geomed", f=1, mode="sharded")),
    ("caf-replicated-momentum-nan", "robust", "nan",
     dict(rule="caf", f=1, mode="replicated", momentum=0.5)),
    ("trimmed_mean-replicated-none", "robust", "none",
     dict(rule="trimmed_mean", f=1, mode="replicated")),
    # the torch.distributed path that CUDA buckets take, run on CPU buckets
    ("median-collectives-sharded-nan", "robust", "nan",
     dict(rule="median", f=1, mode="sharded", _host_path=False)),
    ("geomed-collectives-sign_flip", "robust", "sign_flip",
     dict(rule="geomed", f=1, mode="sharded", _host_path=False)),
]


def _all_reduce_checks(rank, world):
    """rt.robust_all_reduce against robustagg.aggregate on the gathered vectors."""
    out = {}
    for rule, f, mode in (("median", 1, "sharded"), ("geomed", 1, "sharded"),
                          ("krum", 0, "sharded"), ("trimmed_mean", 1, "replicated")):
        gen = torch.Generator().manual_seed(rank)
        mine = torch.randn(1001, generator=gen)
        if rank == BYZANTINE_RANK:
            mine.fill_(float("nan"))
        every = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(every, mine)
        ref = robustagg.aggregate(torch.stack(every), rule=rule, f=f)
        got = mine.clone()
        report = rt.robust_all_reduce(got, rule=rule, f=f, mode=mode, return_report=True)
        results = [torch.empty_like(got) for _ in range(world)]
        dist.all_gather(results, got)
        out[f"{rule}-{mode}"] = {
            "same_everywhere": all(torch.equal(g.view(torch.int32), got.view(torch.int32))
                                   for g in results),
            "bits_equal": bool(torch.equal(got.view(torch.int32), ref.view(torch.int32))),
            "max_rel": float(((got - ref).abs() / ref.abs().clamp_min(1e-3)).max()),
            "finite": bool(torch.isfinite(got).all()),
            "nonfinite": report.nonfinite.tolist(),
        }
    return out


def worker(rank, world, out_dir):
    torch.set_num_threads(1)
    # A file store: no TCP store server thread on rank 0 and no port to race
    # other jobs for (the file is new for every run: a file store must not
    # outlive its group).
    dist.init_process_group("gloo", init_method="file://" + os.path.join(out_dir, "store"),
                            rank=rank, world_size=world)
    results = {}
    try:
        for name, hook, attack, kwargs in SCENARIOS:
            state = None
            if kwargs is not None:
                kwargs = dict(kwargs)
                host_path = kwargs.pop("_host_path", True)
                state = rt.RobustHookState(**kwargs)
                state._host_path = host_path
            loss0, loss = _train(rank, world, hook, state, attack)
            entry = {"loss0": loss0, "loss": loss if math.isfinite(loss) else None}
            if state is not None:
                entry["effective_mode"] = state.effective_mode
                entry["records"] = len(state.history)
                last = [r for r in state.history if r.step == state.step - 1]
                entry["excluded_last_step"] = sorted({e for r in last for e in r.excluded})
                entry["weights_last_step"] = [
                    None if w != w else w for w in last[-1].report.weights.tolist()]
            results[name] = entry
        results["all_reduce"] = _all_reduce_checks(rank, world)
        try:
            rt.RobustHookState(rule="krum", f=1)
            results["too_small"] = None
        except robustagg.RaggArgumentError as e:
            results["too_small"] = str(e)
        dist.barrier()  # nobody tears the group down while a peer still talks to it
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(results, fh)
    # The results are on disk: leave without the interpreter's teardown, where
    # gloo's and the DDP reducer's C++ threads may still be joinable while
    # static destructors run and abort the process ("terminate called without
    # an active exception": one worker, once, in a CI run).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
