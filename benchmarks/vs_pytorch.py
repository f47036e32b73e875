"""Training-step throughput of every family's default step: jgan against PyTorch twins, one table.

Rows, one per (family, framework), for the default config of experiments.<family>:

  dcgan     DCGAN on 28x28x1, batch 64, the paper's settings (`--preset paper`; `gan_twins.py`)
  wgan_gp   WGAN-GP: critic without BatchNorm, n_critic 5 (each on its own real batch of 64),
            gradient penalty by double backward, Adam(1e-4, 0, 0.9) (`gan_twins.py`)
  bigan     BiGAN's MNIST MLPs: G, E and the joint D(x, z), batch 128 (`gan_twins.py`)
  pix2pix   unet_128 + 70x70 PatchGAN at width 32, batch 4, 128x128 (`translation_twins.py`)
  cyclegan  resnet_6blocks + two PatchGANs, pools, batch 1, 128x128 (`translation_twins.py`)
  stylegan  64x64x1, batch 16, style mixing, R1 on every 4th real image by double backward,
            G's EMA (`stylegan_twin.py`)
  biggan    28x28x1 with labels, batch 32, spectral norm, attention, orthogonal
            regularization, G's EMA (`biggan_twin.py`)

and frameworks: `jgan` (the step as training runs it: `build_setup`, `jit_train_step`),
`pytorch` (eager; CUDA when available) and, with --torch-compile, `pytorch-compile` (each of the
step's networks wrapped in `torch.compile`). The twins are the same layers (their parameter
counts must equal jgan's: `params_match`) doing the same work per step; inputs are synthetic
uint8 images (speed only), the same on both sides.

Each row runs in its own subprocess, so that rows do not share memory or caches; the PyTorch
rows never import jax. Columns: img_per_s = real images a step consumes (batch x n_critic; a
pair for pix2pix and CycleGAN) / the median step time; ms_per_step = that median over --steps
steps after --warmup; compile_s = `jitted.lower(...).compile()` for jgan, the first warm-up step
for PyTorch; peak_mb = the subprocess's peak RSS on CPU (imports included), the device's peak
allocation on a GPU (jax `peak_bytes_in_use`, `torch.cuda.max_memory_allocated`), after the
timed steps, and where it goes: runtime_mb = the resident set once the framework (and, for jgan,
jgan) is imported, before any network exists; peak_compiled_mb (jgan) = the peak once the step is
compiled; peak_1_mb, peak_n_mb = the peak after the first step and after --memory-steps steps, so
that growth shows; ratio = jgan's img_per_s over the row's (above 1: jgan is faster). JSON lines
as rows finish, then a markdown table for docs/performance.md with the load average before and
after.

Run from the repository root:  python benchmarks/vs_pytorch.py [--families dcgan wgan_gp]
[--steps 20] [--warmup 3] [--memory-steps 100] [--torch-compile]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import tempfile
import types
from pathlib import Path

# Only jax-free modules at the top: a PyTorch row's subprocess imports this file too, and its
# peak memory must count PyTorch alone. jgan is imported inside the functions that run it.
from timing import (random_batches, row_in_subprocess, rss_mb, time_torch_step,  # noqa: E402
                    torch_batches, torch_device, torch_or_none)

FAMILIES = ("dcgan", "wgan_gp", "bigan", "pix2pix", "cyclegan", "stylegan", "biggan")
GAN_TWINS = ("dcgan", "wgan_gp", "bigan")
TRANSLATION_TWINS = ("pix2pix", "cyclegan")
TWINS = (*GAN_TWINS, *TRANSLATION_TWINS, "stylegan", "biggan")
NOT_WRITTEN = "twin: not written"
COMPILED = "pytorch-compile"


def experiment_config(family: str):
    module = importlib.import_module(f"jgan.experiments.{family}")
    # The DCGAN twin is the paper's network: the quick start's default adds minibatch
    # discrimination, which the twin does not have.
    return module.paper_config() if family == "dcgan" else module.get_config()


def data_spec(family: str, config):
    """The spec of what the family's data would yield, for synthetic batches of it."""
    from jgan.data import DataSpec

    if family in TRANSLATION_TWINS:
        from translation_step import translation_spec

        return translation_spec(config)
    if family == "stylegan":
        size = config.data.image_size
        return DataSpec(arrays={"image": ((size, size, config.data.channels), "uint8")})
    return DataSpec.from_image_shape((28, 28, 1), num_classes=10 if family == "biggan" else 0)


def row_inputs(family: str) -> dict:
    """What a row's subprocess needs beside the family's name, as JSON: the config's fields,
    the batches' arrays and rows, and the numbers the translation twins take."""
    config = experiment_config(family)
    spec = data_spec(family, config)
    inputs = {"config": dataclasses.asdict(config), "arrays": spec.arrays,
              "num_classes": spec.num_classes,
              "rows": config.train.batch_size * config.train.n_critic}
    if family in TRANSLATION_TWINS:
        from translation_step import twin_arguments

        inputs["twin_arguments"] = twin_arguments(config)
    return inputs


def namespace(value):
    """JSON objects as attribute namespaces: the twins read `config.model.z_dim` as from a
    jgan Config."""
    if isinstance(value, dict):
        return types.SimpleNamespace(**{key: namespace(item) for key, item in value.items()})
    return value


def summary(family: str, framework: str, inputs: dict, timed: dict, params: dict) -> dict:
    seconds, compile_s = timed["seconds"], timed["compile_s"]
    return {"family": family, "framework": framework,
            "batch": inputs["config"]["train"]["batch_size"], "images_per_step": inputs["rows"],
            "img_per_s": round(inputs["rows"] / seconds, 2),
            "ms_per_step": round(1e3 * seconds, 1),
            "compile_s": None if compile_s is None else round(compile_s, 2),
            "peak_mb": timed["peak_mb"], "memory": timed["memory"], "device": timed["device"],
            "params": params,
            **{key: timed.get(key) for key in ("runtime_mb", "peak_compiled_mb", "peak_1_mb",
                                               "peak_n_mb")}}


def jgan_row(family: str, inputs: dict, steps: int, warmup: int, memory_steps: int) -> dict:
    from jgan_timing import time_jgan_step

    config = experiment_config(family)
    batches = random_batches(inputs["arrays"], inputs["rows"], num_classes=inputs["num_classes"])
    timed = time_jgan_step(config, data_spec(family, config), batches, steps=steps,
                           warmup=warmup, memory_steps=memory_steps)
    return {**summary(family, "jgan", inputs, timed, timed["params"]),
            "devices": timed["devices"]}


def torch_twin(torch, family: str, config, inputs: dict):
    """`(networks by jgan's state names, make_step(networks, device) -> step(batch))`."""
    if family in GAN_TWINS:
        import gan_twins

        return (gan_twins.torch_networks(torch, family, config),
                lambda nets, device: gan_twins.STEPS[family](torch, config, nets, device))
    if family == "biggan":
        import biggan_twin

        return (biggan_twin.torch_biggan(torch, config),
                lambda nets, device: biggan_twin.make_biggan_step(torch, config, nets, device))
    if family == "stylegan":
        import stylegan_twin

        return (stylegan_twin.torch_stylegan(torch, config),
                lambda nets, device: stylegan_twin.make_stylegan_step(torch, config, nets,
                                                                      device))
    import translation_twins

    arguments = inputs["twin_arguments"]
    nets = translation_twins.torch_networks(torch, config, unet_depth=arguments["unet_depth"])
    return nets, lambda nets, device: translation_twins.make_torch_step(
        torch, config, nets, jitter_to=arguments["jitter_to"])


def torch_row(family: str, framework: str, inputs: dict, steps: int, warmup: int,
              memory_steps: int) -> dict:
    torch = torch_or_none()
    runtime_mb = rss_mb()
    torch.manual_seed(0)
    device = torch_device(torch)
    nets, make_step = torch_twin(torch, family, namespace(inputs["config"]), inputs)
    nets = {name: net.to(device).train() for name, net in nets.items()}
    params = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
    if framework == COMPILED:
        nets = {name: torch.compile(net) for name, net in nets.items()}
    step = make_step(nets, device)
    batches = torch_batches(torch, random_batches(inputs["arrays"], inputs["rows"],
                                                  num_classes=inputs["num_classes"]), device)
    counter = {"k": 0}

    def run_step():
        step(batches[counter["k"] % len(batches)])
        counter["k"] += 1

    try:
        timed = time_torch_step(torch, run_step, steps=steps, warmup=warmup, device=device,
                                memory_steps=memory_steps, runtime_mb=runtime_mb)
    except Exception as error:  # torch.compile's failures are many kinds; a row reports any
        if framework != COMPILED:
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return {"family": family, "framework": framework,
                "skipped": f"{type(error).__name__}: {reason}"[:300]}
    return {**summary(family, framework, inputs, timed, params), "threads": timed["threads"]}


def run_row(family: str, framework: str, inputs: dict, args) -> dict:
    """One row in a subprocess of its own; a failed row says why in its `skipped` field."""
    command = [sys.executable, str(Path(__file__).resolve()), "--row", family, framework,
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--memory-steps", str(args.memory_steps)]
    with tempfile.TemporaryDirectory() as cache:
        # A cold torch.compile, as jgan's compile_s is cold: inductor's on-disk cache would
        # otherwise serve the graphs of an earlier run.
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        return row_in_subprocess(command, {"family": family, "framework": framework},
                                 input=json.dumps(inputs), env=env)


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each PyTorch row gains `ratio` (jgan's img_per_s over its own) and `params_match`."""
    jgan = {row["family"]: row for row in rows if row["framework"] == "jgan" and "img_per_s" in row}
    for row in rows:
        base = jgan.get(row["family"])
        if row["framework"] != "jgan" and base and "img_per_s" in row:
            # From the step times: img_per_s is rounded, and both rows consume the same images.
            row["ratio"] = round(row["ms_per_step"] / base["ms_per_step"], 2)
            row["params_match"] = row["params"] == base["params"]
    return rows


def megabytes(value) -> str:
    return "" if value is None else f"{value:.0f}"


def markdown(rows: list[dict], load: tuple[str, str], memory_steps: int) -> str:
    lines = [f"load average (1, 5, 15 min): {load[0]} before, {load[1]} after", "",
             "| family | framework | batch | img/s | ms/step | compile s | runtime MiB | "
             f"peak MiB at 1 / {memory_steps} steps | jgan/this | params |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['family']} | {row['framework']} | | | | | | | | "
                         f"{row['skipped']} |")
            continue
        params = f"{sum(row['params'].values()) / 1e6:.2f}M"
        if "params_match" in row:
            params += " (= jgan)" if row["params_match"] else " (differs from jgan!)"
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        peaks = (f"{megabytes(row.get('peak_1_mb'))} / {megabytes(row.get('peak_n_mb'))} "
                 f"({row['memory']})")
        lines.append(f"| {row['family']} | {row['framework']} | {row['batch']} | "
                     f"{row['img_per_s']:.1f} | {row['ms_per_step']:.1f} | {row['compile_s']} | "
                     f"{megabytes(row.get('runtime_mb'))} | {peaks} | {ratio} | {params} |")
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps before timing (default 3)")
    parser.add_argument("--memory-steps", type=int, default=100,
                        help="step on to this step for the last peak-memory column (default "
                             "100; 0: none)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="also time the twins with torch.compile of each network")
    parser.add_argument("--row", nargs=2, metavar=("FAMILY", "FRAMEWORK"),
                        help=argparse.SUPPRESS)  # a subprocess's one row; inputs on stdin
    args = parser.parse_args()
    if args.row:
        family, framework = args.row
        inputs = json.load(sys.stdin)
        if framework == "jgan":
            row = jgan_row(family, inputs, args.steps, args.warmup, args.memory_steps)
        else:
            row = torch_row(family, framework, inputs, args.steps, args.warmup,
                            args.memory_steps)
        print(json.dumps(row), flush=True)
        return 0
    have_torch = torch_or_none() is not None
    frameworks = ["pytorch", *([COMPILED] if args.torch_compile else [])]
    before, rows = load_average(), []

    def emit(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)

    for family in args.families:
        inputs = row_inputs(family)
        emit(run_row(family, "jgan", inputs, args))
        for framework in frameworks if have_torch else ():
            if family in TWINS:
                emit(run_row(family, framework, inputs, args))
            else:
                emit({"family": family, "framework": framework, "skipped": NOT_WRITTEN})
    if not have_torch:
        print("pytorch skipped: torch is not importable", flush=True)
    rows = with_ratios(rows)
    print(json.dumps({"ratios": {f"{row['family']}/{row['framework']}": row["ratio"]
                                 for row in rows if "ratio" in row}}), flush=True)
    print(markdown(rows, (before, load_average()), args.memory_steps), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
