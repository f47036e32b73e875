"""Shared fixtures: the real datasets beside the repository, an isolated cache, tiny configs."""

import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# XLA's LLVM optimizations take most of the time of compiling a tiny network (seconds for each
# program) and buy nothing over the few steps a test takes: the suite compiles without them, in
# its own process (set before jax starts its backend) and in every subprocess, which inherit the
# environment. The programs compute the same functions; only their rounding may differ, and every
# bitwise check compares runs made under the same flags. On 2 cores this cut the suite's summed
# test time by 30% (docs/tests.md).
QUICK_COMPILE_FLAGS = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {QUICK_COMPILE_FLAGS}".strip()

import jax  # noqa: E402
import pytest  # noqa: E402

from jgan import compile_cache
from jgan.config import Config, DataConfig, OptimConfig, TrainConfig
from jgan.data import DataSpec
from jgan.families.bigan import BiGANLossConfig, BiGANModelConfig
from jgan.families.gan import GANLossConfig, GANModelConfig
from jgan.train.setup import build_setup

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REPO = Path(__file__).resolve().parents[1]


# xdist hands a worker one whole file at a time, in collection order (--no-loadscope-reorder in
# pyproject.toml; by default it would take the files with the most tests first). The files that
# take longest go first, so that neither of CI's two workers is left alone with a long one at the
# end. Their order is that of a --durations=0 run on 2 cores (docs/tests.md); the rest follow.
LONGEST_FIRST = ("test_workflow_defects", "test_mode_collapse", "test_biggan", "test_d_augment",
                 "test_stylegan", "test_families", "test_experiments", "test_parallel",
                 "test_bigan", "test_translation_families", "test_ssgan", "test_evaluation",
                 "test_interruptions", "test_train", "test_multiprocess", "test_family_protocol",
                 "test_dann", "test_ssgan_twin", "test_benchmark_twins", "test_folders")


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable within a file


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Prepared datasets go to a per-session cache; no test reads the user's environment."""
    os.environ["JGAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("jgan_cache"))
    os.environ.pop("JGAN_DATA_DIR", None)
    os.environ.pop("JGAN_INCEPTION_WEIGHTS", None)
    # A resumed run, a second experiment call and the sampler compile what an earlier test
    # compiled, often in another file, on the other xdist worker or in a subprocess: one XLA cache
    # for the whole pytest run spares the CPU those compilations. Subprocesses inherit it through
    # the environment. Its size limit makes JAX lock the folder for every read and write
    # (jgan/compile_cache.py), so processes started together never read a half-written entry.
    xla_cache = run_folder(tmp_path_factory) / "xla_cache"
    xla_cache.mkdir(exist_ok=True)
    for name, value in (("jax_compilation_cache_dir", str(xla_cache)),
                        ("jax_persistent_cache_min_compile_time_secs",
                         compile_cache.MIN_COMPILE_SECONDS),
                        ("jax_compilation_cache_max_size", compile_cache.MAX_BYTES)):
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)
    yield


def run_folder(tmp_path_factory) -> Path:
    """The temporary folder of this pytest run, shared by its xdist workers (each has its own
    folder below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture
def shared_datasets() -> Path:
    if not (SHARED_DATASETS / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS} (clone beside ../shared)")
    return SHARED_DATASETS


def drawn_variables(module, *inputs, seed: int = 0, **kwargs):
    """The variables `module.init` would make for `inputs`, drawn by NumPy instead: N(0, 0.02)
    weights, BatchNorm's initial scale, bias and statistics. For checks that hold whatever the
    weights: compiling a network's random init (threefry for each parameter) takes seconds."""
    import numpy as np

    shapes = jax.eval_shape(lambda key: module.init(key, *inputs, **kwargs), jax.random.key(0))
    rng = np.random.default_rng(seed)
    fixed = {"scale": 1.0, "var": 1.0, "bias": 0.0, "mean": 0.0}
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: np.full(leaf.shape, fixed[path[-1].key], leaf.dtype)
        if path[-1].key in fixed else rng.normal(0.0, 0.02, leaf.shape).astype(leaf.dtype),
        shapes)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, for a multi-process job's coordinator."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mnist_spec(shape=(28, 28, 1), num_classes: int = 10) -> DataSpec:
    """The data spec of MNIST (labelled, 10 classes), or of images of `shape` with `num_classes`
    classes (0: unlabelled)."""
    return DataSpec.from_image_shape(shape, num_classes=num_classes)


def build(config: Config, shape=(28, 28, 1), num_classes: int = 10):
    """The config's setup for images of `shape` (MNIST's by default, labelled with 10 classes)."""
    return build_setup(config, mnist_spec(shape, num_classes))


def tiny_config(arch: str = "dcgan", **train) -> Config:
    """A DCGAN (or MLP GAN) small enough to compile and step in about a second on a CPU."""
    defaults = dict(steps=4, batch_size=16, log_every=1, sample_every=2, checkpoint_every=2,
                    grid_size=4)
    return Config(name=f"tiny_{arch}", model=GANModelConfig(arch=arch, z_dim=8,
                                                            base_features=8, hidden=32),
                  train=TrainConfig(**{**defaults, **train}))


def with_train(config: Config, **changes) -> Config:
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


def tiny_everything_config(**train) -> Config:
    """Every piece of state and schedule at once: spectral-norm vectors, G's EMA, two critic
    updates per step, a gradient penalty, lazy R1 every 2 steps, and ACGAN's class labels."""
    config = tiny_config("dcgan", **{"n_critic": 2, "ema_kimg": 0.1, **train})
    return dataclasses.replace(
        config, name="tiny_everything",
        model=dataclasses.replace(config.model, d_norm="none", spectral_norm=True,
                                  conditioning="auxiliary", num_classes=10),
        loss=GANLossConfig(gan_loss="hinge", gp_weight=1.0, r1_gamma=1.0, reg_interval=2))


def tiny_bigan_config(arch: str = "dcgan", **train) -> Config:
    """BigBiGAN at its smallest, with every option that adds state or loss terms: the unary
    scores, the gradient penalty on (x, z), the encoder-collapse regularizer, and for the dcgan
    arch pad-then-crop, a fully convolutional G head and mixed pooling."""
    config = tiny_config(arch, **train)
    conv = arch == "dcgan"
    gan = config.model
    model = BiGANModelConfig(arch=arch, z_dim=gan.z_dim, base_features=gan.base_features,
                             hidden=gan.hidden, unary=True, d_norm="none",
                             g_head="conv" if conv else "dense", g_crop=2 if conv else 0,
                             downsample="mixed_pool" if conv else "stride")
    return dataclasses.replace(
        config, name=f"tiny_bigan_{arch}", family="bigan", model=model,
        loss=BiGANLossConfig(gan_loss="hinge", gp_weight=1.0, e_spread_weight=1.5,
                             e_variance_weight=1.0))


def tiny_toy_config(**train) -> Config:
    """The 2-D benchmark's GAN at a size that steps in well under a millisecond."""
    defaults = dict(steps=20, batch_size=32, log_every=10, checkpoint_every=10, seeds=2)
    return Config(name="tiny_toy", data=DataConfig(dataset="ring"),
                  model=GANModelConfig(arch="toy", z_dim=4, hidden=16),
                  optim=OptimConfig(g_lr=1e-3, d_lr=1e-3),
                  train=TrainConfig(**{**defaults, **train}))


def write_image_folder(folder: Path, names, *, size: int = 32, seed: int = 0,
                       transform=None) -> None:
    """Synthetic PNG images (smooth random colour fields) named `names` in `folder`, for the
    translation families' shape and resume tests; `transform(array)` changes each one."""
    import numpy as np
    import PIL.Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = np.asarray(PIL.Image.fromarray(coarse).resize((size, size),
                                                              PIL.Image.BILINEAR))
        PIL.Image.fromarray(transform(image) if transform else image).save(folder / name)


def paired_folder(root: Path, count: int = 10) -> Path:
    """trainA/ and trainB/ with matching names; each B is its A in inverted colours."""
    names = [f"{index:03d}.png" for index in range(count)]
    write_image_folder(root / "trainA", names)
    write_image_folder(root / "trainB", names, transform=lambda image: 255 - image)
    return root


def unpaired_folder(root: Path, count_a: int = 9, count_b: int = 7) -> Path:
    """trainA/ and trainB/ of unrelated images with unrelated names and counts."""
    write_image_folder(root / "trainA", [f"a{index}.png" for index in range(count_a)], seed=1)
    write_image_folder(root / "trainB", [f"b{index}.jpg" for index in range(count_b)], seed=2)
    return root


def tiny_translation_config(family: str, images: Path, **train) -> Config:
    """Pix2Pix or CycleGAN (U-Net generators for both) on 32x32 images at widths of 4, with
    rates of 1e-2 so that 24 steps show learning: compiles and steps in seconds."""
    from jgan.families.cyclegan import CycleGANModelConfig
    from jgan.families.pix2pix import Pix2PixModelConfig

    model_config = {"pix2pix": Pix2PixModelConfig, "cyclegan": CycleGANModelConfig}[family]
    extra = {"unet_depth": 5} if family == "pix2pix" else {"generator": "unet_32"}
    defaults = dict(steps=4, batch_size=2, log_every=1, sample_every=2, checkpoint_every=2,
                    grid_size=2)
    return Config(name=f"tiny_{family}", family=family,
                  data=DataConfig(images=str(images), holdout=2),
                  model=model_config(g_features=4, d_features=4, d_layers=2, **extra),
                  optim=OptimConfig(g_lr=1e-2, d_lr=1e-2),
                  train=TrainConfig(**{**defaults, **train}))


# --- Test-time savings (issue: room in CI's time budget) ---------------------------------------

def drawn_state(setup, seed: int = 0):
    """A train state of `setup` with each network's variables from `drawn_variables` and its
    optimizer state at its initial zeros, built without compiling `setup.init_state` (for a
    BigBiGAN at test size, seconds of threefry and init programs). For checks of a step that
    hold whatever the weights; families whose state holds `extra` entries are refused."""
    import numpy as np

    from jgan.train.state import NetworkState, TrainState

    nets = {}
    for index, name in enumerate(sorted(setup.networks)):
        network = setup.networks[name]
        variables = dict(drawn_variables(network.module, *setup.example_inputs[name],
                                         seed=seed + index, train=False))
        params = variables.pop("params")
        opt_state = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype),
                                 jax.eval_shape(network.tx.init, params))
        nets[name] = NetworkState(params=params, opt_state=opt_state, collections=variables)
    state = TrainState(step=np.zeros((), np.int32), nets=nets)
    expected = jax.eval_shape(setup.init_state, jax.random.key(0))
    assert jax.tree.structure(state) == jax.tree.structure(expected), "state has extra entries"
    assert [(x.shape, x.dtype) for x in jax.tree.leaves(state)] == [
        (x.shape, x.dtype) for x in jax.tree.leaves(expected)]
    return state


class BackgroundWorker:
    """A `python -c code args...` process started now and awaited by `result()`: a module whose
    long run checks are a process of their own starts it when its first test starts, so that
    the run goes on CI's second core while the module's other tests use the first."""

    def __init__(self, code: str, *args, env=None, timeout: float = 600):
        self.timeout, self._stdout = timeout, None
        # Files, not pipes: nobody reads the output until `result()`, and a full pipe would
        # stop the process.
        self._out, self._err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                                        cwd=REPO, env={**os.environ, **(env or {})},
                                        stdout=self._out, stderr=self._err, text=True)

    def result(self) -> str:
        """The process's stdout, once it has exited with 0 (else its stderr's end)."""
        if self._stdout is None:
            self.process.wait(timeout=self.timeout)
            self._err.seek(0)
            assert self.process.returncode == 0, self._err.read()[-3000:]
            self._out.seek(0)
            self._stdout = self._out.read()
        return self._stdout

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._err.close()


def selected(request, test_name: str) -> bool:
    """Whether this session runs the test function `test_name` (any of its parameters)."""
    return any(getattr(item, "originalname", item.name) == test_name
               for item in request.session.items)
