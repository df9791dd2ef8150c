"""One rank of an NCCL process group on one GPU, used by test_torch_nccl.py: the
library's robust all-reduce over torch's own NCCL communicator, directly, through
robust_all_reduce and through the DDP hook. Prints one JSON object."""

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import robustagg
import robustagg.torch as rt


def main(store_path):
    dev = torch.device("cuda", 0)
    torch.cuda.set_device(dev)
    store = dist.FileStore(store_path, 1)
    dist.init_process_group("nccl", store=store, rank=0, world_size=1, device_id=dev)
    res = {}
    # one collective, so that torch has created its communicator
    warm = torch.ones(8, device=dev)
    dist.all_reduce(warm)
    comm, why, _ = rt._lent_comm(dist.group.WORLD, dev)
    res["comm"] = bool(comm)
    res["why"] = why
    gen = torch.Generator(device="cpu").manual_seed(5)
    x = torch.randn(1003, generator=gen).to(dev)
    # one rank: every rule with f = 0 returns the rank's own vector (the mean of one)
    out, rep = robustagg.allreduce_nccl(x, rule="median", f=0, comm=comm, size=1,
                                        return_report=True)
    res["direct_equal"] = bool(torch.equal(out, x))
    res["direct_report_n"] = int(rep.selected.shape[0])
    s = x.clone()
    rt.robust_all_reduce(s, rule="mean", f=0, reduce="sum")
    res["robust_all_reduce_equal"] = bool(torch.equal(s, x))
    # the DDP hook on the NCCL path: the same gradients as DDP's own all-reduce
    torch.manual_seed(0)
    ref = torch.nn.Linear(16, 4).to(dev)
    hooked = torch.nn.Linear(16, 4).to(dev)
    hooked.load_state_dict(ref.state_dict())
    ddp_ref, ddp = DDP(ref), DDP(hooked)
    state = rt.RobustHookState(rule="geomed", f=0, mode="sharded")  # Gram-space, n = 1 is enough
    ddp.register_comm_hook(state, rt.robust_allreduce_hook)
    inp = torch.randn(32, 16, generator=gen).to(dev)
    for m in (ddp_ref, ddp):
        m(inp).square().sum().backward()
    torch.cuda.synchronize()
    res["path"] = state.path_for(dev)
    res["history_modes"] = sorted({h.mode for h in state.history})
    res["grads_close"] = all(
        torch.allclose(a.grad, b.grad, rtol=1e-6, atol=1e-6)
        for a, b in zip(ref.parameters(), hooked.parameters()))
    dist.destroy_process_group()
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1])
