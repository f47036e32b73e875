"""jgan's BatchLoader vs grain 0.2.18: batches/s, exact resume, and whether grain keeps its order.

Issue 13 asks whether to replace the hand-written loader with grain before extending it. Measured:

(a) batches/s over `--batches` batches after 2 warm-up batches (cold: TFDS decodes each example on
    its first visit) of full MNIST (`tfds.data_source("mnist", data_dir=DIR/tfds)`) at batch 64 and
    256, and of facades/trainA (400 JPEGs, 256x256x3) at batch 64, by
      jgan            BatchLoader.iterate: jgan's order, one batch read ahead on a thread; it keeps
                      each decoded MNIST example, so its second pass ("warm") is memory only
      jgan uncached   the same with cache_bytes=0: every visit decodes, as grain's loaders do
      grain map       MapDataset.source(src).shuffle(seed).batch(B), indexed batch by batch
      grain iter      the same `.to_iter_dataset(ReadOptions(num_threads=cores))`: threaded prefetch
      grain loader    grain.DataLoader(IndexSampler(shuffle=True), Batch(B)), worker_count=0
    The folder rows read jgan's decoded cache (`open_data(DataConfig(images=...))`), except
    "grain map+decode", which decodes the JPEGs on every visit as a grain pipeline over files would
    (12 batches only: it is slow).
(b) resume: batches k..k+m of an iterator restored by `set_state(get_state())` after k batches vs
    those of one that never stopped; and grain's shuffled order vs jgan's
    `jax.random.permutation(fold_in(data_key, epoch), N)`, plus a grain pipeline that maps each
    position through jgan's own index function.

Run from the repository root:  python benchmarks/data_loader.py [--batches 100] [--data-dir DIR]
Without grain installed (pip install grain==0.2.18), its rows print "skipped".
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import jax
import numpy as np

from jgan.config import DataConfig
from jgan.data import BatchLoader, open_data
from jgan.data.folders import decode_image

SEED = 0


def import_grain():
    try:
        import grain
    except ImportError:
        return None
    return grain


def rate(batches, count: int, warmup: int = 2) -> float:
    """Batches per second to draw `count` batches from the iterator `batches`, after `warmup`.

    The warm-up keeps one-off costs out (threads starting, compiling jgan's permutation for N).
    """
    for _ in itertools.islice(batches, warmup):
        pass
    start = time.perf_counter()
    for _ in itertools.islice(batches, count):
        pass
    return count / (time.perf_counter() - start)


def jgan_rows(source, batch: int, count: int) -> list[tuple[str, float]]:
    key = jax.random.key(SEED)
    loader = BatchLoader(source, batch_size=batch, data_key=key)
    rows = [("jgan", rate(loader.iterate(0), count))]
    if loader._cache is not None:
        rows.append(("jgan (warm)", rate(loader.iterate(0), count)))
    if not hasattr(source, "take"):
        uncached = BatchLoader(source, batch_size=batch, data_key=key, cache_bytes=0)
        rows.append(("jgan uncached", rate(uncached.iterate(0), count)))
    return rows


def grain_rows(grain, source, batch: int, count: int) -> list[tuple[str, float]]:
    if grain is None:
        return [("grain", float("nan"))]
    mapped = grain.MapDataset.source(source).shuffle(seed=SEED).batch(batch, drop_remainder=True)
    threads = grain.ReadOptions(num_threads=os.cpu_count() or 1)
    loader = grain.DataLoader(
        data_source=source, operations=[grain.transforms.Batch(batch, drop_remainder=True)],
        sampler=grain.samplers.IndexSampler(len(source), shuffle=True, seed=SEED),
        worker_count=0)
    return [("grain map", rate((mapped[i] for i in itertools.count()), count)),
            ("grain iter", rate(iter(mapped.repeat().to_iter_dataset(threads)), count)),
            ("grain loader", rate(iter(loader), count))]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def resume_checks(grain, source, batch: int, k: int = 7, m: int = 5) -> list[tuple[str, str]]:
    loader = BatchLoader(source, batch_size=batch, data_key=jax.random.key(SEED))
    iterated = [b for _, b in itertools.islice(loader.iterate(0), k + m)][k:]
    fresh = BatchLoader(source, batch_size=batch, data_key=jax.random.key(SEED))
    results = [("jgan batch(k) fresh vs iterated",
                "exact" if all(same(a, fresh.batch(k + i)) for i, a in enumerate(iterated))
                else "DIFFERS")]
    if grain is None:
        return results + [("grain", "skipped (not installed)")]

    def restored(make):
        straight = make()
        for _ in range(k):
            next(straight)
        state = straight.get_state()
        expected = [next(straight) for _ in range(m)]
        again = make()
        again.set_state(state)
        return "exact" if all(same(a, next(again)) for a in expected) else "DIFFERS"

    mapped = grain.MapDataset.source(source).shuffle(seed=SEED).batch(batch, drop_remainder=True)
    results.append(("grain iter get_state/set_state after k",
                    restored(lambda: iter(mapped.repeat().to_iter_dataset()))))
    results.append(("grain loader get_state/set_state after k", restored(lambda: iter(
        grain.DataLoader(data_source=source, worker_count=0,
                         sampler=grain.samplers.IndexSampler(len(source), shuffle=True, seed=SEED),
                         operations=[grain.transforms.Batch(batch, drop_remainder=True)])))))

    n = len(source)
    jgan_order = loader._epoch_order(0)
    orders = [np.asarray(list(grain.MapDataset.range(n).shuffle(seed=s))) for s in range(4)]
    matches = [int(np.sum(order == jgan_order)) for order in orders]
    results.append(("grain shuffle(seed 0..3) vs jgan epoch-0 order",
                    f"{max(matches)} of {n} positions agree at best"))

    per_epoch = loader.batches_per_epoch * batch

    def jgan_index(position: int) -> int:
        epoch, offset = divmod(position, per_epoch)
        return int(loader._epoch_order(epoch)[offset])

    def stack(examples):
        return {name: np.stack([np.asarray(e[name]) for e in examples]).astype(
            np.int32 if name == "label" else np.asarray(examples[0][name]).dtype)
            for name in examples[0]}

    ordered = (grain.MapDataset.range(per_epoch * 3).map(jgan_index).map(lambda i: source[i])
               .batch(batch, batch_fn=stack))
    steps = [0, 1, loader.batches_per_epoch, loader.batches_per_epoch + 1]
    results.append(("grain with jgan's index function vs jgan batches",
                    "exact" if all(same(ordered[s], loader.batch(s)) for s in steps)
                    else "DIFFERS"))
    return results


class FileSource:
    """facades/trainA as grain would read it without jgan's cache: one JPEG decode per visit."""

    def __init__(self, files):
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        return {"image": decode_image(self.files[index])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--batches", type=int, default=100, help="batches timed per MNIST row")
    parser.add_argument("--folder-batches", type=int, default=100)
    args = parser.parse_args()
    import tensorflow_datasets as tfds

    grain = import_grain()
    data_dir = Path(args.data_dir)
    mnist = tfds.data_source("mnist", data_dir=str(data_dir / "tfds"), split="train")
    folder = data_dir / "facades" / "trainA"
    table = []
    for batch in (64, 256):
        for name, value in (jgan_rows(mnist, batch, args.batches)
                            + grain_rows(grain, mnist, batch, args.batches)):
            table.append(("mnist train (60k, tfds)", batch, name, value))
    start = time.perf_counter()
    facades = open_data(DataConfig(images=str(folder)), log=lambda _: None).dataset
    opened = time.perf_counter() - start
    files = sorted(folder.glob("*.jpg"))
    for batch in (64,):
        rows = jgan_rows(facades, batch, args.folder_batches)
        rows += grain_rows(grain, facades, batch, args.folder_batches)
        if grain is not None:
            decoding = grain.MapDataset.source(FileSource(files)).shuffle(seed=SEED).batch(batch)
            rows.append(("grain map+decode", rate((decoding[i] for i in itertools.count()),
                                                  min(args.folder_batches, 12))))
        table += [("facades/trainA (400 jpg)", batch, name, value) for name, value in rows]

    print(f"{'source':<26}{'batch':>6}  {'loader':<16}{'batches/s':>11}{'img/s':>10}")
    for source, batch, name, value in table:
        shown = ("skipped", "") if np.isnan(value) else (f"{value:.1f}", f"{value * batch:,.0f}")
        print(f"{source:<26}{batch:>6}  {name:<16}{shown[0]:>11}{shown[1]:>10}")
    print(f"(facades opened by open_data in {opened:.2f} s: the decode, or a cache read)")
    print()
    for source_name, source, batch in (("mnist", mnist, 64), ("facades", facades, 64)):
        for check, outcome in resume_checks(grain, source, batch):
            print(f"{source_name:<8} {check:<50} {outcome}")


if __name__ == "__main__":
    main()
