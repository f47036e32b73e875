"""Where a jgan train step's peak memory goes: compiling against running, donated or not.

For one family's default step (as `vs_pytorch.py` builds it), each in a process of its own:
the step compiled with the persistent compilation cache cold, then loaded from it warm; each
with the state passed as it is today and with it donated (`donate_argnums=(0,)`, so that a
step's output state may reuse its input's buffers). Columns: runtime_mb, the resident set with
jax and jgan imported; peak_compiled_mb, the peak once the step is compiled (or loaded); and
peak_n_mb, the peak after --steps steps. A cold row's compile peak is XLA's compiler at work;
the warm row's is what a run pays once the cache holds its programs.

Run from the repository root:  python benchmarks/step_memory.py pix2pix [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from timing import peak_rss_mb, random_batches, row_in_subprocess, rss_mb  # noqa: E402


def measure(family: str, cache: str, donate: bool, steps: int) -> dict:
    import jax

    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    import vs_pytorch

    from jgan.train.family_trainer import initial_state, jit_train_step
    from jgan.train.parallel import make_mesh, shard_batch
    from jgan.train.setup import build_setup

    runtime_mb = rss_mb()
    config = vs_pytorch.experiment_config(family)
    inputs = vs_pytorch.row_inputs(family)
    setup = build_setup(config, vs_pytorch.data_spec(family, config))
    mesh = make_mesh()
    state = initial_state(setup, jax.random.key(0), mesh)  # as a run makes it
    batch = shard_batch(random_batches(inputs["arrays"], inputs["rows"],
                                       num_classes=inputs["num_classes"])[0], mesh)
    key = jax.random.key(1)
    step = jit_train_step(setup, mesh, donate_state=donate).lower(state, batch, key).compile()
    peak_compiled_mb = peak_rss_mb()
    for _ in range(steps):
        state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    return {"runtime_mb": runtime_mb, "peak_compiled_mb": peak_compiled_mb,
            "peak_n_mb": peak_rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--row", nargs=2, metavar=("CACHE", "DONATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        cache, donate = args.row
        print(json.dumps(measure(args.family, cache, donate == "1", args.steps)), flush=True)
        return 0
    for donate in (False, True):
        with tempfile.TemporaryDirectory() as cache:
            for warmth in ("cold", "warm"):
                row = {"family": args.family, "donated": donate, "cache": warmth}
                command = [sys.executable, str(Path(__file__).resolve()), args.family,
                           "--steps", str(args.steps), "--row", cache, str(int(donate))]
                print(json.dumps({**row, **row_in_subprocess(command, row)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
