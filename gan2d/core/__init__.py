"""The training core: pure JAX, no UI.

- ``config``: the run configuration (``Config``) and its field specs (``spec``);
- ``data``, ``nets``, ``losses``: samplers, MLPs, objectives and regularisers;
- ``train``: ``make_train(config)`` -> pure ``init`` / ``step`` / ``chunk``;
- ``runs``: batches of runs (a single run is a batch of one), sharded over devices,
  and ``transition``, what a new config means for a running state;
- ``programs``: the process-wide compile cache (persistent across processes);
- ``metrics``, ``evaluate``: the protocol's numbers and how a run is scored;
- ``snapshot``: what a run looks like now, for the app;
- ``sweep``, ``memory``: grids of runs and the memory they need.
"""
