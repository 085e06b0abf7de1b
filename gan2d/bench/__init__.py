"""``python -m gan2d bench``: how fast gan2d trains, against the other ways to write it.

``speed`` measures steps per second (scan-fused, unbatched, per-step jit, vmapped runs,
PyTorch eager); ``torch_ref`` is the PyTorch reference (imported only when torch is
installed). Nothing in ``gan2d.core`` imports this package.
"""

from gan2d.bench.speed import BenchPlan, format_table, full_plan, quick_plan, run_bench

__all__ = ["BenchPlan", "format_table", "full_plan", "quick_plan", "run_bench"]
