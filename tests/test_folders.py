"""Image folders as data: plain, paired (A/B folders, A|B files) and unpaired; the decode cache."""

import dataclasses
import itertools
import warnings

import jax
import numpy as np
import PIL.Image
import pytest

from jgan.cli import parse_config
from jgan.config import Config, DataConfig
from jgan.data import BatchLoader, DataError, DataSpec, open_data
from jgan.data import folders
from jgan.errors import UserError


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test decodes into its own cache, so what it sees is its own doing."""
    monkeypatch.setenv("JGAN_CACHE_DIR", str(tmp_path / "cache"))


def save(path, array, mode=None, image=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    (image or PIL.Image.fromarray(array, mode)).save(path)


def grey(value, height=8, width=8):
    return np.full((height, width), value, np.uint8)


def colour(rgb, height=8, width=8):
    return np.tile(np.asarray(rgb, np.uint8), (height, width, 1))


def open_folder(folder, **data):
    return open_data(DataConfig(images=str(folder), **data), log=lambda _: None)


def our_warnings(record):
    return [str(w.message) for w in record if "skipped" in str(w.message)]


def test_mixed_modes_load_and_one_warning_names_every_bad_file(tmp_path):
    folder = tmp_path / "mixed"
    save(folder / "a_grey.png", grey(100))
    save(folder / "b_rgb.png", colour((10, 20, 30)))
    save(folder / "c_rgba.png", np.dstack([colour((40, 50, 60)), grey(0)]))
    save(folder / "d_wide.png", np.full((8, 8), 65535, np.uint16))  # 16-bit grey
    save(folder / "sub" / "e_bits.bmp", np.ones((8, 8), bool))  # mode "1", one folder down
    palette = PIL.Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 7, 8, 9] + [0] * 762)
    save(folder / "f_palette.tif", None, image=palette)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    save(tmp_path / "whole.jpg", colour((1, 2, 3), 64, 64))
    (folder / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    (folder / "notes.txt").write_text("not an image")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        data = open_folder(folder)
    messages = our_warnings(record)
    assert len(messages) == 1
    assert all(name in messages[0] for name in ("broken.png", "cut.jpg", "notes.txt"))
    assert "a_grey" not in messages[0]
    assert data.spec == DataSpec(arrays={"image": ((8, 8, 3), "uint8")}, kind="single")
    images = data.dataset.take(np.arange(len(data.dataset)))["image"]
    # sorted by relative path: a_grey, b_rgb, c_rgba, d_wide, f_palette, sub/e_bits
    expected = [(100,) * 3, (10, 20, 30), (40, 50, 60), (255,) * 3, (7, 8, 9), (255,) * 3]
    np.testing.assert_array_equal(images[:, 0, 0], expected)
    batch = data.loader(3, jax.random.key(0)).batch(1)
    assert set(batch) == {"image"} and batch["image"].shape == (3, 8, 8, 3)
    with pytest.warns(UserWarning, match="broken.png"):  # said again when read from the cache
        assert "read from" in open_folder(folder).description


def test_a_folder_with_nothing_readable_names_the_folder(tmp_path):
    folder = tmp_path / "junk_only"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match=r"no readable image in .*junk_only .*2 file\(s\) skipped"):
        open_folder(folder)
    with pytest.raises(DataError, match="does not exist"):
        open_folder(tmp_path / "missing")


def test_channels_follow_the_images_or_the_setting(tmp_path):
    save(tmp_path / "g" / "1.png", grey(9))
    save(tmp_path / "g" / "2.png", np.full((8, 8), 256 * 40, np.uint16))
    assert open_folder(tmp_path / "g").spec.shape() == (8, 8, 1)
    forced = open_folder(tmp_path / "g", channels=3)
    assert forced.spec.shape() == (8, 8, 3)
    np.testing.assert_array_equal(forced.dataset[1]["image"][0, 0], [40, 40, 40])
    save(tmp_path / "c" / "1.png", colour((255, 0, 0)))
    as_grey = open_folder(tmp_path / "c", channels=1)
    assert as_grey.spec.shape() == (8, 8, 1)
    assert as_grey.dataset[0]["image"][0, 0, 0] == 76  # ITU-R 601 luma of pure red


def test_mixed_sizes_need_image_size(tmp_path):
    save(tmp_path / "f" / "a.png", grey(1, 8, 8))
    save(tmp_path / "f" / "b.png", grey(2, 10, 12))
    with pytest.raises(DataError, match=r"a.png is 8x8, b.png is 10x12.*--set data.image_size=N"):
        open_folder(tmp_path / "f")
    assert open_folder(tmp_path / "f", image_size=6).spec.shape() == (6, 6, 1)


def make_pairs(root, count, b_suffix=".bmp"):
    """trainA/i.png grey i*10; trainB/i<b_suffix> colour (i*10, 255 - i*10, 0)."""
    for i in range(count):
        save(root / "trainA" / f"{i}.png", grey(i * 10))
        save(root / "trainB" / f"{i}{b_suffix}", colour((i * 10, 255 - i * 10, 0)))


def check_resume(loader_of, steps=(0, 3, 7, 11)):
    """batch(k) of a fresh loader equals the k-th batch of one iterated from 0."""
    iterated = dict(itertools.islice(loader_of().iterate(0), max(steps) + 1))
    fresh = loader_of()
    for step in steps:
        for name, values in fresh.batch(step).items():
            np.testing.assert_array_equal(values, iterated[step][name])


def test_paired_folders_yield_aligned_rows(tmp_path):
    make_pairs(tmp_path, 12)
    data = open_folder(tmp_path)
    assert data.spec.kind == "paired"
    assert data.spec.arrays == {"image_A": ((8, 8, 1), "uint8"), "image_B": ((8, 8, 3), "uint8")}
    loader = data.loader(4, jax.random.key(1))
    rows = [loader.batch(step) for step in range(3)]  # one epoch
    a = np.concatenate([batch["image_A"][:, 0, 0, 0] for batch in rows])
    b = np.concatenate([batch["image_B"][:, 0, 0] for batch in rows])
    np.testing.assert_array_equal(a, b[:, 0])
    np.testing.assert_array_equal(b[:, 1], 255 - a)
    assert sorted(a) == [i * 10 for i in range(12)] and list(a) != sorted(a)
    check_resume(lambda: data.loader(4, jax.random.key(1)))


def test_side_by_side_files_split_into_aligned_halves(tmp_path):
    for i in range(6):
        save(tmp_path / "train" / f"{i}.png", np.hstack([grey(i), grey(100 + i)]))
    save(tmp_path / "test" / "0.png", np.hstack([grey(0), grey(1)]))
    data = open_folder(tmp_path, pairing="side_by_side")
    assert data.spec.kind == "paired" and len(data.dataset) == 6  # train/ only
    assert data.spec.arrays == {"image_A": ((8, 8, 1), "uint8"), "image_B": ((8, 8, 1), "uint8")}
    batch = data.loader(3, jax.random.key(0)).batch(1)
    np.testing.assert_array_equal(batch["image_B"], batch["image_A"] + 100)


def test_unpaired_streams_are_independent_and_resume(tmp_path):
    for i in range(12):
        save(tmp_path / "trainA" / f"a{i:02d}.png", grey(i))
    for i in range(8):
        save(tmp_path / "trainB" / f"b{i:02d}.png", grey(100 + i))
    data = open_folder(tmp_path)
    assert data.spec.kind == "unpaired" and data.dataset is None
    assert [len(s) for s in data.streams.values()] == [12, 8]
    key = jax.random.key(2)
    loader = data.loader(4, key)
    a = [loader.batch(step)["image_A"][:, 0, 0, 0] for step in range(6)]
    b = [loader.batch(step)["image_B"][:, 0, 0, 0] - 100 for step in range(6)]
    # A: 3 batches per epoch, B: 2; each stream visits all its examples once per its own epoch.
    for epoch in range(2):
        assert sorted(np.concatenate(a[3 * epoch:3 * epoch + 3])) == list(range(12))
    for epoch in range(3):
        assert sorted(np.concatenate(b[2 * epoch:2 * epoch + 2])) == list(range(8))
    assert not np.array_equal(np.concatenate(a[:2]), np.concatenate(b[:2]))
    # Stream i is a BatchLoader of its own keyed by fold_in(data_key, i).
    own_b = BatchLoader(data.streams["B"], batch_size=4, data_key=jax.random.fold_in(key, 1))
    np.testing.assert_array_equal(own_b.batch(5)["image_B"], loader.batch(5)["image_B"])
    position = loader.position(4)
    assert (position["A"]["epoch"], position["A"]["batch_in_epoch"]) == (1, 1)
    assert (position["B"]["epoch"], position["B"]["batch_in_epoch"]) == (2, 0)
    check_resume(lambda: data.loader(4, key))
    with pytest.raises(UserError, match="exceeds stream B's 8 examples"):
        data.loader(10, key)


def test_pairing_is_read_from_the_names_or_forced(tmp_path):
    make_pairs(tmp_path, 4, b_suffix=".png")
    assert open_folder(tmp_path, pairing="unpaired").spec.kind == "unpaired"
    (tmp_path / "trainB" / "3.png").rename(tmp_path / "trainB" / "x.png")
    assert open_folder(tmp_path).spec.kind == "unpaired"
    with pytest.raises(DataError, match=r"do not match one to one \(e.g. 3\)"):
        open_folder(tmp_path, pairing="paired")
    with pytest.raises(DataError, match="side_by_side takes one folder"):
        open_folder(tmp_path, pairing="side_by_side")
    with pytest.raises(DataError, match=r"split 'test', only split\(s\) train.*data.split=train"):
        open_folder(tmp_path, split="test")


def test_decoded_once_then_read_from_the_cache_until_a_file_changes(tmp_path, monkeypatch):
    make_pairs(tmp_path / "pairs", 5)
    first = open_folder(tmp_path / "pairs")
    decoded = []
    real_decode = folders.decode_image
    monkeypatch.setattr(folders, "decode_image", lambda path: decoded.append(path) or
                        real_decode(path))
    again = open_folder(tmp_path / "pairs")
    assert decoded == [] and "read from" in again.description
    np.testing.assert_array_equal(again.dataset.take([0, 4])["image_B"],
                                  first.dataset.take([0, 4])["image_B"])
    save(tmp_path / "pairs" / "trainA" / "2.png", grey(77))
    changed = open_folder(tmp_path / "pairs")
    assert len(decoded) == 10 and "decoded into" in changed.description
    assert changed.dataset[2]["image_A"][0, 0, 0] == 77
    caches = list((tmp_path / "cache" / "folders").iterdir())
    assert len(caches) == 2 and not [c for c in caches if c.name.startswith(".")]


def test_dataset_name_finds_a_folder_in_the_data_dir(tmp_path):
    make_pairs(tmp_path / "root" / "my_pairs", 3)
    data = open_data(DataConfig(dataset="my_pairs", data_dir=str(tmp_path / "root")),
                     log=lambda _: None)
    assert data.name == "my_pairs" and data.spec.kind == "paired"


def test_cli_images_flag_and_validation(tmp_path):
    config, workdir = parse_config(Config(), ["--images", str(tmp_path / "faces/")],
                                   description="")
    assert config.data.images == str(tmp_path / "faces/")
    assert workdir == f"runs/{config.name}_faces"
    for setting, message in [("data.pairing=sideways", "data.pairing 'sideways' is unknown"),
                             ("data.channels=2", "data.channels 2 is not"),
                             ("data.image_size=-1", "data.image_size -1 is negative")]:
        with pytest.raises(UserError, match=message):
            parse_config(Config(), ["--set", setting], description="")
    with pytest.raises(UserError, match="apply to image folders"):
        open_data(DataConfig(channels=3))


def test_data_spec_round_trips_through_json():
    spec = DataSpec(arrays={"image": ((28, 28, 1), "uint8"), "label": ((), "int32")},
                    num_classes=10)
    assert DataSpec.from_json(spec.to_json()) == spec
    assert DataSpec.from_image_shape([28, 28, 1], num_classes=10) == spec
    assert DataSpec.from_image_shape((32, 32, 3)).arrays == {"image": ((32, 32, 3), "uint8")}
    with pytest.raises(ValueError, match="kind"):
        DataSpec(arrays={}, kind="triple")


def real_folder(shared_datasets, name):
    if not (shared_datasets / name).is_dir():
        pytest.skip(f"{name} not found in {shared_datasets}")
    return DataConfig(dataset=name, data_dir=str(shared_datasets), image_size=32)


def test_real_facades_are_paired_and_cached(shared_datasets, monkeypatch):
    config = real_folder(shared_datasets, "facades")
    data = open_data(config, log=lambda _: None)
    assert data.spec.kind == "paired" and len(data.dataset) == 400
    assert data.spec.arrays == {"image_A": ((32, 32, 3), "uint8"),
                                "image_B": ((32, 32, 3), "uint8")}
    monkeypatch.setattr(folders, "decode_image", None)  # a decode would now fail
    again = open_data(config, log=lambda _: None)
    assert "read from" in again.description
    np.testing.assert_array_equal(again.dataset.take([5])["image_B"],
                                  data.dataset.take([5])["image_B"])


def test_real_summer2winter_is_unpaired_test_only(shared_datasets):
    config = real_folder(shared_datasets, "summer2winter_yosemite")
    with pytest.raises(DataError, match="only split.s. test: use --set data.split=test"):
        open_data(config)
    data = open_data(dataclasses.replace(config, split="test"), log=lambda _: None)
    assert data.spec.kind == "unpaired"
    assert [len(s) for s in data.streams.values()] == [309, 238]
    batch = data.loader(16, jax.random.key(0)).batch(20)  # past both first epochs (19, 14 batches)
    assert {k: v.shape for k, v in batch.items()} == {"image_A": (16, 32, 32, 3),
                                                      "image_B": (16, 32, 32, 3)}


@pytest.mark.slow
def test_dcgan_trains_on_a_folder_and_names_the_skipped_files(tmp_path, capsys):
    from experiments import dcgan

    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for index in range(20):
        size = (40, 48) if index % 2 else (48, 40)  # mixed sizes: data.image_size resizes them
        save(folder / f"{index:02d}.png", rng.integers(0, 256, (*size, 3), np.uint8))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(100))
    (folder / "readme.txt").write_text("not an image")
    workdir = tmp_path / "run"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        code = dcgan.main(["--images", str(folder), "--workdir", str(workdir), "--steps", "2",
                           "--batch-size", "8", "--set", "data.image_size=32",
                           "--set", "model.base_features=8", "--set", "model.z_dim=8",
                           "--set", "train.sample_every=2", "--set", "train.grid_size=4"])
    assert code == 0
    skipped = our_warnings(record)
    assert len(skipped) == 1 and "corrupt.jpg" in skipped[0] and "readme.txt" in skipped[0]
    assert (workdir / "samples" / "step_000002.png").is_file()
    grid = np.asarray(PIL.Image.open(workdir / "samples" / "step_000002.png"))
    assert grid.ndim == 3 and grid.shape[-1] == 3  # RGB folder, RGB samples
    assert "photos" in capsys.readouterr().out
    code = dcgan.main(["--images", str(folder), "--workdir", str(tmp_path / "measured"),
                       "--eval-every", "2", "--set", "data.image_size=32"])
    assert code == 2
    assert "is an image folder: drop --eval-every" in capsys.readouterr().err
