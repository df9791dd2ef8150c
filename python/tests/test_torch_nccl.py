"""The library's robust all-reduce over torch's NCCL communicator: argument checks
everywhere, and on a machine with a GPU a one-rank NCCL process group (in a
subprocess, nccl_worker.py) through robustagg.allreduce_nccl, robust_all_reduce
and the DDP hook."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

if importlib.util.find_spec("torch") is None:
    pytest.skip("torch is not installed", allow_module_level=True)

import torch  # noqa: E402

import robustagg  # noqa: E402
import robustagg._lib as L  # noqa: E402
import robustagg.torch as rt  # noqa: E402


def test_allreduce_nccl_refuses_what_it_cannot_run():
    x = torch.zeros(10)
    if L.nccl_lib() is None:
        with pytest.raises(robustagg.RaggError, match="librobustagg_nccl") as e:
            robustagg.allreduce_nccl(x, "median", 0, comm=1, size=2)
        assert e.value.name == "RAGG_ERR_UNSUPPORTED"
        return
    with pytest.raises(robustagg.RaggArgumentError, match="comm=0"):
        robustagg.allreduce_nccl(x, "median", 0, comm=0, size=2)
    with pytest.raises(robustagg.RaggArgumentError, match="size=0"):
        robustagg.allreduce_nccl(x, "median", 0, comm=1, size=0)
    with pytest.raises(robustagg.RaggArgumentError, match="device memory"):
        robustagg.allreduce_nccl(x, "median", 0, comm=1, size=2)
    with pytest.raises(robustagg.RaggArgumentError, match="mode"):
        robustagg.allreduce_nccl(x, "median", 0, comm=1, size=2, mode="ring")


def test_hook_path_and_why_not():
    off = rt.RobustHookState(rule="krum", f=1, nccl=False)
    assert off.path_for("cuda") == "collectives" and off.nccl_unavailable == "nccl=False"
    assert off.mode_for("cuda") == "replicated" and off.path_for("cpu") == "library"
    on = rt.RobustHookState(rule="krum", f=1)
    if on.path_for("cuda") == "collectives":  # no library, no device or no process group
        assert on.nccl_unavailable != ""
        assert on.mode_for("cuda") == "replicated"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")
def test_one_rank_nccl_group(tmp_path):
    if not robustagg.cuda_available():
        pytest.skip("librobustagg was built without its CUDA backend")
    if L.nccl_lib() is None:
        pytest.skip(L.nccl_error())
    import torch.distributed as dist

    if not dist.is_nccl_available():
        pytest.skip("torch was built without NCCL")
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(here)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    run = subprocess.run([sys.executable, os.path.join(here, "nccl_worker.py"),
                          str(tmp_path / "store")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    res = json.loads(run.stdout.strip().splitlines()[-1])
    assert res["comm"], res["why"]
    assert res["direct_equal"] and res["direct_report_n"] == 1
    assert res["robust_all_reduce_equal"]
    assert res["path"] == "nccl" and res["history_modes"] == ["sharded"]
    assert res["grads_close"]


class _FakeBackend:
    """Stands for torch's ProcessGroupNCCL: comm_ptr() answers from a list."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    def comm_ptr(self):
        self.calls += 1
        return self.answers.pop(0)


class _FakeGroup:
    def __init__(self, backend):
        self.backend = backend

    def _get_backend(self, device):
        return self.backend


def test_hook_asks_torch_for_its_communicator(monkeypatch):
    """The hook's choice of path, with torch's communicator faked: a communicator
    torch has not created yet (0) is asked for again; a lent one is kept; a backend
    that lends none is given up on."""
    import contextlib

    monkeypatch.setattr(L, "nccl_lib", lambda: object())
    monkeypatch.setattr(robustagg._core, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    dev = torch.device("cuda", 0)
    backend = _FakeBackend([0, 1234])
    group = _FakeGroup(backend)
    state = rt.RobustHookState(rule="krum", f=1, process_group=group)
    assert state._nccl_comm(group, dev) is None
    assert "not created yet" in state.nccl_unavailable
    assert state._nccl_comm(group, dev) == 1234 and state.nccl_unavailable == ""
    assert state.path_for(dev) == "nccl" and state.mode_for(dev) == "sharded"
    assert backend.calls == 2  # kept: not asked a third time

    class NoComm:
        pass

    other = _FakeGroup(NoComm())
    assert rt._lent_comm(other, dev)[0] is None
    assert "lends no NCCL communicator" in rt._lent_comm(other, dev)[1]
