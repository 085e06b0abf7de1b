"""Batches of runs: the one way gan2d trains, from a single run to a sweep.

``Runs(configs)`` holds configs that share a static part (the same shapes and code;
they may differ in data: learning rates, weights, seeds). Their states are stacked on
a leading run axis and trained by ``jit(vmap(chunk))``. A single run is a batch of one:
the CLI's ``train``, each lab session, each group of the Compare tab and a sweep all
run the same compiled kind of program, from the process-wide compile cache.

The run axis is sharded over the local devices (``jax.sharding``): a sweep on a box
with several GPUs uses all of them with this same code. Runs are independent, so the
program needs no communication between devices. A batch is padded with copies of its
last run to a multiple of the devices it uses, and the copies are never shown.

``transition`` is the one rule for what a new config means for a running state.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan2d.core.config import STATIC_FLAGS, Config
from gan2d.core.programs import PROGRAMS
from gan2d.core.train import MODES, hparams_array, make_optimizer, make_train


def shared_static_part(configs: Sequence[Config]) -> Config:
    """The static part that runs every config in ``configs``: R1 and instance noise
    are compiled in when any run has them on. ``ValueError`` if the configs differ in
    any other static field (then they need separate programs: see ``group``)."""
    parts = [c.static_part() for c in configs]
    merged = replace(parts[0], **{f: max(getattr(p, f) for p in parts) for f in STATIC_FLAGS})
    flags_off = dict.fromkeys(STATIC_FLAGS, 0.0)
    for part in parts[1:]:
        if replace(part, **flags_off) != replace(merged, **flags_off):
            raise ValueError("these configs differ in static fields; they need separate programs")
    return merged


def program_key(config: Config) -> Config:
    """Configs with equal keys can share one program (see ``shared_static_part``)."""
    return replace(config.static_part(), **dict.fromkeys(STATIC_FLAGS, 0.0))


def devices_for(runs: int) -> list:
    """The local devices a batch of ``runs`` runs is spread over."""
    devices = jax.local_devices()
    return devices[: max(1, min(len(devices), runs))]


def _shapes(tree) -> Any:
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


class Packing:
    """Where each array of one run's tree sits in a few flat buffers, one per dtype.
    ``pack`` works in a traced program (``vmap`` adds the run axis); ``unpack`` works
    there and on the host with numpy (views, no copies), keeping any leading axes.

    A call into a compiled program, and a transfer to the host, costs Python work per
    array passed, and on a busy server each array can wait for Python's lock (GIL)
    while the event loop holds it: a state of ~90 arrays took 40 to 360 ms to pass to
    its chunk with one other busy thread, against 3 ms alone. Packed, it is 3 arrays."""

    def __init__(self, shapes):
        """``shapes``: the tree of one run (``jax.ShapeDtypeStruct`` leaves, no run axis)."""
        self.shapes = shapes
        leaves, self.treedef = jax.tree_util.tree_flatten(shapes)
        self.dtypes = sorted({np.dtype(leaf.dtype) for leaf in leaves}, key=str)
        ends = dict.fromkeys(self.dtypes, 0)
        self.slots = []  # per leaf: (buffer, start, stop, shape)
        for leaf in leaves:
            dtype, shape = np.dtype(leaf.dtype), tuple(leaf.shape)
            start = ends[dtype]
            ends[dtype] += int(np.prod(shape, dtype=int))
            self.slots.append((self.dtypes.index(dtype), start, ends[dtype], shape))
        self.sizes = tuple(ends.values())

    def pack(self, tree) -> tuple:
        """The buffers of one run's ``tree`` (traced: a run axis comes from ``vmap``)."""
        leaves = self.treedef.flatten_up_to(tree)
        return tuple(
            jnp.concatenate(
                [jnp.ravel(x) for x, s in zip(leaves, self.slots, strict=True) if s[0] == i]
            )
            for i in range(len(self.dtypes))
        )

    def unpack(self, buffers):
        """The tree of ``buffers``; leading axes (runs) are kept."""
        leaves = [
            buffers[i][..., start:stop].reshape((*buffers[i].shape[:-1], *shape))
            for i, start, stop, shape in self.slots
        ]
        return self.treedef.unflatten(leaves)

    def shaped(self, runs: int) -> tuple:
        """The buffers' shapes for a batch of ``runs``."""
        return tuple(
            jax.ShapeDtypeStruct((runs, n), d) for d, n in zip(self.dtypes, self.sizes, strict=True)
        )

    def fetch(self, buffers):
        """The tree on the host: one transfer per buffer."""
        return self.unpack(jax.device_get(buffers))


@functools.lru_cache(maxsize=64)
def state_packing(static: Config) -> Packing:
    """How one run's state of static config ``static`` packs."""
    train = make_train(static)
    key = _shapes(jax.random.PRNGKey(0))
    return Packing(jax.eval_shape(train.init, key, _shapes(hparams_array(static))))


@functools.lru_cache(maxsize=256)
def diag_packing(static: Config, n: int, mode: str) -> Packing:
    """How one run's diagnostics of an ``n``-step chunk in ``mode`` pack."""
    train = make_train(static)
    return Packing(
        jax.eval_shape(lambda s: train.chunk(s, n, mode), state_packing(static).shapes)[1]
    )


class Runs:
    """Configs that share one static program, trained together along a run axis."""

    def __init__(self, configs: Sequence[Config]):
        if not configs:
            raise ValueError("no runs")
        self.configs = [c.validate() for c in configs]
        self.static = shared_static_part(self.configs)
        self.train = make_train(self.static)
        self.devices = devices_for(len(self.configs))
        # pad with copies of the last run to a multiple of the devices
        self.padded = -(-len(self.configs) // len(self.devices)) * len(self.devices)
        mesh = Mesh(np.array(self.devices), ("runs",))
        self.sharding = NamedSharding(mesh, PartitionSpec("runs"))
        self._state_shapes = None

    @property
    def size(self) -> int:
        return len(self.configs)

    def _padded_configs(self) -> list[Config]:
        return self.configs + [self.configs[-1]] * (self.padded - self.size)

    def cache_key(self, name: str, *extra) -> tuple:
        """The compile-cache key of program ``name`` for this batch."""
        return (self.static, name, self.padded, len(self.devices), *extra)

    def has_program(self, name: str, *extra) -> bool:
        """Whether program ``name`` is compiled (a call would not wait for a compile)."""
        return PROGRAMS.has(self.cache_key(name, *extra))

    def _put(self, tree):
        return jax.device_put(tree, self.sharding)

    # ------------------------------------------------------------------ programs
    def batched(self, fn):
        """``fn`` of one run, applied along the run axis of every argument and result.

        A batch of several is ``vmap``. A batch of one runs ``fn`` itself between a
        squeeze and an expand of the run axis: XLA's CPU kernels for batched matrix
        products of batch 1 are slower than the plain ones (``gan2d bench`` measures
        "batch of 1 / unbatched"), and a single run must cost what it costs alone."""
        if self.padded > 1:
            return jax.vmap(fn)

        def one(*args):
            out = fn(*jax.tree_util.tree_map(lambda a: a[0], args))
            return jax.tree_util.tree_map(lambda a: a[None], out)

        return one

    def _compiled(self, name: str, make_fn, example, extra=(), donate=False):
        """``jit(make_fn())`` over sharded run-axis arguments, compiled once per
        process; ``make_fn()`` and ``example()`` (the arguments' shapes) are called only
        to compile: a frame that finds its program pays for no tracing set-up."""

        def build():
            donated = (0,) if donate and jax.default_backend() != "cpu" else ()
            jitted = jax.jit(
                make_fn(),
                in_shardings=self.sharding,
                out_shardings=self.sharding,
                donate_argnums=donated,
            )
            shapes = [
                jax.tree_util.tree_map(
                    lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.sharding), e
                )
                for e in example()
            ]
            return jitted.lower(*shapes).compile()

        return PROGRAMS.get(self.cache_key(name, *extra), build)

    def _init_args(self):
        keys = jnp.stack([jax.random.PRNGKey(c.seed) for c in self._padded_configs()])
        return keys, self._stacked_hparams(self._padded_configs())

    def _stacked_hparams(self, configs: Sequence[Config]) -> dict:
        return jax.tree_util.tree_map(
            lambda *xs: jnp.stack(xs), *[hparams_array(c) for c in configs]
        )

    def state_shapes(self):
        """Shapes of the stacked state (nothing is computed or allocated)."""
        if self._state_shapes is None:
            init = jax.vmap(self.train.init)
            self._state_shapes = jax.eval_shape(init, *_shapes(self._init_args()))
        return self._state_shapes

    def is_compiled(self, n: int, mode: str = "both", packed: bool = False) -> bool:
        """Whether init and an ``n``-step chunk (``packed_chunk`` with ``packed``) are
        compiled (a call would not wait for a compile). Training a packed state never
        unpacks it, so ``unpack`` is not asked for (a lab may never compile it)."""
        if not packed:
            return self.has_program("init") and self.has_program("chunk", n, mode)
        names = ("init", "pack")
        return all(map(self.has_program, names)) and self.has_program("packed-chunk", n, mode)

    # ------------------------------------------------------------------ training
    def _init_program(self):
        return self._compiled(
            "init", lambda: self.batched(self.train.init), lambda: _shapes(self._init_args())
        )

    def _chunk_program(self, n: int, mode: str, packed: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; choose one of {', '.join(MODES)}")
        train = self.train
        if not packed:
            chunk = lambda: self.batched(lambda one: train.chunk(one, n, mode))  # noqa: E731
            example = lambda: (self.state_shapes(),)  # noqa: E731
            return self._compiled("chunk", chunk, example, extra=(n, mode), donate=True)
        state_p, diag_p = self.packing(), diag_packing(self.static, n, mode)

        def one(buffers):
            state, diag = train.chunk(state_p.unpack(buffers), n, mode)
            return state_p.pack(state), diag_p.pack(diag)

        example = lambda: (self.packing().shaped(self.padded),)  # noqa: E731
        make = lambda: self.batched(one)  # noqa: E731
        return self._compiled("packed-chunk", make, example, extra=(n, mode), donate=True)

    # ------------------------------------------------------------------ packed states
    def packing(self) -> Packing:
        """How one run's state packs (``pack``)."""
        return state_packing(self.static)

    def pack(self, state) -> tuple:
        """``state`` as a few flat buffers (one per dtype; see ``Packing``): what
        ``packed_chunk`` and ``snapshot.take`` take. New arrays of their own."""
        return self._pack_program()(state)

    def unpack(self, packed):
        """The state of ``packed`` (``pack``'s inverse), new arrays of its own."""
        return self._unpack_program()(packed)

    def _pack_program(self):
        make = lambda: self.packing().pack  # noqa: E731
        return self.compiled("pack", make, lambda: (self.state_shapes(),))

    def _unpack_program(self):
        make = lambda: self.packing().unpack  # noqa: E731
        return self.compiled("unpack", make, lambda: (self.packing().shaped(self.padded),))

    def packed_chunk(self, packed, n: int, mode: str = "both"):
        """``chunk`` on a packed state: (packed state, packed diagnostics). The
        diagnostics come to the host in one transfer: ``fetch_diag``. On a GPU the
        input is donated: use the returned one."""
        return self._chunk_program(int(n), mode, packed=True)(packed)

    def packed_with_hparams(self, packed):
        """``with_hparams`` on a packed state: one call with the new values as one
        array (building ~20 small arrays and repacking the state would pass ~90 arrays
        through Python's lock, hundreds of milliseconds on a busy server)."""
        rows = [c.hparams() for c in self._padded_configs()]
        names = sorted(rows[0])
        values = np.array([[row[k] for k in names] for row in rows], np.float32)
        return self._hparams_program(tuple(names))(packed, self._put(values))

    def _hparams_program(self, names: tuple[str, ...]):
        state_p = self.packing()

        def one(buffers, values):
            state = state_p.unpack(buffers)
            return state_p.pack({**state, "hp": {k: values[i] for i, k in enumerate(names)}})

        def example():
            return state_p.shaped(self.padded), jax.ShapeDtypeStruct(
                (self.padded, len(names)), jnp.float32
            )

        return self.compiled("packed-hparams", lambda: one, example)

    def fetch_diag(self, diag, n: int, mode: str = "both") -> dict[str, np.ndarray]:
        """``packed_chunk``'s diagnostics on the host, of shape (padded, n) as ``chunk``'s."""
        return diag_packing(self.static, int(n), mode).fetch(diag)

    def prepare_init(self) -> None:
        """Compile init now (if not yet)."""
        self._init_program()

    def prepare(self, n: int, mode: str = "both", packed: bool = False) -> float:
        """Compile init and the ``n``-step chunk (``packed_chunk`` with ``packed``) now
        (if not yet); the seconds it took."""
        t0 = time.perf_counter()
        self._init_program()
        self._chunk_program(int(n), mode, packed)
        if packed:
            self._pack_program()
            self._unpack_program()
        return time.perf_counter() - t0

    def init(self):
        """Stacked fresh states; run i starts from ``PRNGKey(configs[i].seed)``."""
        return self._init_program()(*self._put(self._init_args()))

    def chunk(self, state, n: int, mode: str = "both"):
        """Run ``n`` steps of every run: (state, diagnostics of shape (padded, n)).

        ``mode``: both nets, critic only ("d"), or generator only ("g"). On a GPU the
        input state is donated: use the returned one."""
        return self._chunk_program(int(n), mode)(state)

    def with_hparams(self, state, configs: Sequence[Config] | None = None):
        """The same runs with the data hyper-parameters of ``configs`` (no recompile)."""
        configs = list(configs or self.configs)
        configs += [configs[-1]] * (self.padded - len(configs))
        return {**state, "hp": self._put(self._stacked_hparams(configs))}

    def from_state(self, one):
        """Every run starting from ``one`` (one run's state, not stacked: a
        ``RunResult.state`` or a loaded weights file) with its own config's data
        hyper-parameters: the inverse of ``run_state``. ``ValueError`` if ``one`` is not
        the state of a run of this static config."""
        expected = self.state_shapes()
        stacked = jax.tree_util.tree_map(
            lambda a: jnp.repeat(jnp.asarray(a)[None], self.padded, axis=0), one
        )
        if not _same_shapes(stacked, expected) or any(
            a.dtype != e.dtype
            for a, e in zip(
                jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(expected), strict=True
            )
        ):
            raise ValueError("this is not the state of one run of this config")
        return self.with_hparams(self._put(stacked))

    def compiled(self, name: str, make_fn, example, extra=()):
        """Another program of one run (a snapshot, say), batched over these runs and
        compiled once, from the cache; ``make_fn()`` gives the function of one run and
        ``example()`` its arguments' shapes, batched (both called only to compile)."""
        return self._compiled(name, lambda: self.batched(make_fn()), example, extra=extra)

    def adopt(self, old_state):
        """Carry networks from a state of another static config when their shapes fit.

        Returns a state for these runs, or None if the networks' shapes differ.
        Optimiser states are kept when their structure fits too, else re-initialised."""
        fresh = self.state_shapes()
        if not (
            _same_shapes(fresh["g"], old_state["g"]) and _same_shapes(fresh["d"], old_state["d"])
        ):
            return None
        state = self.with_hparams(old_state)
        for net, opt in (("g", "g_opt"), ("d", "d_opt")):
            if not _same_shapes(fresh[opt], old_state[opt]):
                tx = make_optimizer(self.static)
                state[opt] = self._put(jax.vmap(tx.init)(old_state[net]))
        return state


def run_state(state, i: int):
    """The ``i``-th run of a stacked state (or stacked diagnostics)."""
    return jax.tree_util.tree_map(lambda a: a[i], state)


def _same_shapes(a, b) -> bool:
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b):
        return False
    return all(
        np.shape(x) == np.shape(y)
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def group(configs: Sequence[Config]) -> list[tuple[list[int], Runs]]:
    """Split configs into batches that can share a program: (indices, Runs) pairs, in
    the order of first appearance. Compare uses it to step unlike runs together."""
    by_key: dict[Config, list[int]] = {}
    for i, config in enumerate(configs):
        by_key.setdefault(program_key(config), []).append(i)
    return [(idx, Runs([configs[i] for i in idx])) for idx in by_key.values()]


# ---------------------------------------------------------------------- transitions


class Change(NamedTuple):
    """What a new config did to a running state."""

    kind: str  # "hparams": same program, new data; "adopt": new program, same
    #            networks; "restart": fresh networks from the seed
    runs: Runs
    state: Any
    reason: str  # why, in words, for the page ("" for "hparams")


def transition(
    runs: Runs | None,
    state,
    configs: Sequence[Config],
    restart: bool = False,
    packed: bool = False,
):
    """What ``configs`` mean for ``state`` (trained by ``runs``): one pure rule.

    - a seed change, ``restart`` or no state yet: restart from the seeds;
    - only data fields changed: the same program with new data, nothing recompiles;
    - static fields changed but the networks keep their shapes (loss, optimiser, critic
      steps, batch, dataset...): a new program that adopts the networks;
    - otherwise (width, depth, latent size, packing, activation...): restart.

    With ``packed``, ``state`` and the returned state are packed (``Runs.pack``).
    """
    new = Runs(configs)

    def fresh():
        return new.pack(new.init()) if packed else new.init()

    if runs is None or state is None:
        return Change("restart", new, fresh(), "")
    if restart:
        return Change("restart", new, fresh(), "Run restarted from seed")
    if [c.seed for c in configs] != [c.seed for c in runs.configs]:
        return Change("restart", new, fresh(), "Run restarted from seed")
    if new.static == runs.static and new.padded == runs.padded:
        kept = new.packed_with_hparams(state) if packed else new.with_hparams(state)
        return Change("hparams", new, kept, "")
    adopted = None
    if new.padded == runs.padded:
        adopted = new.adopt(runs.unpack(state) if packed else state)
    if adopted is None:
        reason = "The networks changed shape, so the run restarted from seed"
        return Change("restart", new, fresh(), reason)
    return Change("adopt", new, new.pack(adopted) if packed else adopted, "Kept the networks")


# ---------------------------------------------------------------------- one whole run


class RunResult(NamedTuple):
    state: Any  # the final state of the run (not stacked)
    history: dict[str, np.ndarray]  # per-step diagnostics, length ``steps``
    seconds: float  # compile included
    compile_seconds: float
    steps: int

    @property
    def steps_per_s(self) -> float:
        return self.steps / max(self.seconds - self.compile_seconds, 1e-9)


def train_run(config: Config, steps: int, chunk_size: int = 500, init_state=None) -> RunResult:
    """Train one run of ``config`` for ``steps`` steps, keeping the full per-step
    history; ``gan2d train`` runs this. The run starts from its seed, or from
    ``init_state`` (one run's state, not stacked: a ``RunResult.state`` or a loaded
    weights file) with ``config``'s data hyper-parameters. The state carries its key
    and step, so A steps then B more equal A + B steps straight, bit for bit."""
    if steps < 1:
        raise ValueError(f"steps={steps} must be at least 1")
    runs = Runs([config])
    start = time.perf_counter()
    compile_seconds = runs.prepare(min(chunk_size, steps))
    state = runs.init() if init_state is None else runs.from_state(init_state)
    history: dict[str, list] = {}
    done = 0
    while done < steps:
        n = min(chunk_size, steps - done)
        compile_seconds += runs.prepare(n)
        state, diag = runs.chunk(state, n)
        for k, v in jax.device_get(diag).items():
            history.setdefault(k, []).append(np.asarray(v[0]))
        done += n
    state = jax.block_until_ready(run_state(state, 0))
    seconds = time.perf_counter() - start
    hist = {k: np.concatenate(v) for k, v in history.items()}
    return RunResult(state, hist, seconds, compile_seconds, steps)
