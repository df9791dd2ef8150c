"""robustagg: Byzantine-robust aggregation of gradients (Python bindings of librobustagg).

    import robustagg
    g = robustagg.aggregate(x, rule="krum", f=2)          # x: (n, d) array
    g, report = robustagg.aggregate(x, rule="median", f=2, return_report=True)
    g = robustagg.allreduce(my_grad, rule="krum", f=1, transport=t)  # t: a robustagg.Transport
    g = robustagg.allreduce_nccl(cuda_grad, rule="krum", f=1, comm=comm, size=world)

The C library is found through RAGG_LIBRARY, then robustagg/lib/, then the
source tree's build/host/, then the system's library path.
"""

from . import _lib
from ._collective import Transport, allreduce, allreduce_nccl, reduce_scatter, reduce_scatter_nccl
from ._core import (
    OPTIONS,
    RaggArgumentError,
    RaggError,
    Report,
    aggregate,
    config_defaults,
    cuda_available,
    min_inputs,
    version,
)

__version__ = "0.1.0"

#: The rule names, as ragg_rule_name spells them.
rules = _lib.RULES
#: Rules that act on each coordinate on its own (they aggregate shard by shard).
coordinate_wise_rules = tuple(r for r in _lib.RULES if r in _lib.COORDINATE_WISE)
library_path = _lib.library_path

# Load at import so that a missing library is reported here, not on first use.
_lib.lib()

__all__ = [
    "aggregate",
    "allreduce",
    "reduce_scatter",
    "allreduce_nccl",
    "reduce_scatter_nccl",
    "Transport",
    "rules",
    "coordinate_wise_rules",
    "Report",
    "RaggError",
    "RaggArgumentError",
    "OPTIONS",
    "config_defaults",
    "cuda_available",
    "min_inputs",
    "version",
    "library_path",
]
