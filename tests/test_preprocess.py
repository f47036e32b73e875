"""Preprocessing of image folders and its inverse: the border box, crop, resize, centring."""

import jax
import numpy as np
import PIL.Image
import pytest

from conftest import SHARED_DATASETS
from jgan.config import DataConfig
from jgan.data import DataError, DataSpec, Preprocessing, check_data_config, find_border_box
from jgan.data import folders, open_data
from jgan.errors import UserError
from jgan.images import to_uint8
from jgan.train.step_parts import images_to_float


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test decodes into its own cache, so what it sees is its own doing."""
    monkeypatch.setenv("JGAN_CACHE_DIR", str(tmp_path / "cache"))


def bordered_images(count=6, size=48, seed=0):
    """uint8 [count, size, size, 1]: smooth fields of 60..220 in rows 8..40 and columns 12..36
    (each image a little inside that), on a black border."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size, 1), np.uint8)
    for index in range(count):
        coarse = rng.integers(60, 221, (3, 3), dtype=np.uint8)
        top, left = (8, 12) if index == 0 else (10, 14)  # image 0 reaches the box's edges
        height, width = 32 + 8 - top, 24 + 12 - left
        field = PIL.Image.fromarray(coarse).resize((width, height), PIL.Image.BILINEAR)
        images[index, top:top + height, left:left + width, 0] = np.maximum(np.asarray(field), 1)
    return images


def write_folder(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        PIL.Image.fromarray(image[..., 0]).save(folder / f"{index:03d}.png")
    return folder


def open_folder(folder, **data):
    return open_data(DataConfig(images=str(folder), **data), log=lambda _: None)


def test_round_trip_returns_the_source_and_its_border_exactly(tmp_path):
    source = bordered_images()
    data = open_folder(write_folder(tmp_path / "slices", source), crop="auto", image_size=16,
                       center=True)
    pre = Preprocessing.from_spec(data.spec)
    # content rows 8..40 (32), columns 12..36 (24), squared evenly to columns 8..40
    assert pre.crop_box == (8, 8, 40, 40) and pre.border_value == (0,)
    assert pre.source_shape == (48, 48, 1) and pre.size == (16, 16)
    images = data.dataset.take(np.arange(len(source)))["image"]
    assert images.shape == (6, 16, 16, 1)
    np.testing.assert_array_equal(images, pre.from_source(source))
    back = pre.to_source(to_uint8(pre.model_to_unit(pre.to_model(images))))
    assert back.shape == source.shape and back.dtype == np.uint8
    outside = np.ones((48, 48), bool)
    outside[8:40, 8:40] = False
    np.testing.assert_array_equal(back[:, outside], 0)
    # Halving and doubling a smooth field loses little (a few levels) 3 pixels or more inside
    # it; nearer its edge, a jump of 60 or more to black, the halving blurs more.
    error = np.abs(back.astype(int) - source.astype(int))[..., 0]
    for index, (top, left) in enumerate([(8, 12)] + [(10, 14)] * 5):
        inside = error[index, top + 3:37, left + 3:33]
        assert inside.max() <= 6 and 0 < inside.mean() < 1.5, (inside.max(), inside.mean())
    assert error[:, 8:40, 8:40].mean() < 10


def test_the_found_box_by_hand():
    images = np.full((2, 10, 12, 1), 5, np.uint8)
    images[0, 3, 4] = 9
    images[1, 6, 5] = 0
    # rows 3..7 (4), columns 4..6 (2): columns grow by 1 on each side to a 4x4 square
    assert find_border_box(images) == ((3, 3, 7, 7), (5,))
    near_edge = np.full((1, 10, 12, 1), 5, np.uint8)
    near_edge[0, 1, 11] = near_edge[0, 4, 11] = 200
    # rows 1..5 (4); columns 11..12 would grow to 10..14, shifted back inside to 8..12
    assert find_border_box(near_edge) == ((1, 8, 5, 12), (5,))
    rgb = np.zeros((1, 6, 6, 3), np.uint8)
    rgb[0, 2:4, 2:4, 1] = 1  # differs in one channel only
    assert find_border_box(rgb) == ((2, 2, 4, 4), (0, 0, 0))


def test_to_source_pastes_into_the_border_colour_where_the_images_came_from():
    rgb = Preprocessing(source_shape=(10, 12, 3), crop_box=(2, 3, 8, 9), border_value=(7, 8, 9),
                        size=(3, 3))
    back = rgb.to_source(np.full((2, 3, 3, 3), 200, np.uint8))
    assert back.shape == (2, 10, 12, 3)
    np.testing.assert_array_equal(back[:, 2:8, 3:9], 200)  # a flat image resizes to itself
    back[:, 2:8, 3:9] = (7, 8, 9)
    np.testing.assert_array_equal(back, np.broadcast_to(np.uint8([7, 8, 9]), back.shape))
    # No box, a 12x8 source resized to 4x4: the images came from its central 8x8 square.
    tall = Preprocessing(source_shape=(12, 8, 1), crop_box=None, border_value=(0,), size=(4, 4))
    assert tall.region == (2, 0, 10, 8)
    back = tall.to_source(np.full((1, 4, 4, 1), 50, np.uint8))[0, :, :, 0]
    assert (back[2:10] == 50).all() and (back[:2] == 0).all() and (back[10:] == 0).all()


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_corners_that_disagree_and_a_blank_folder_are_refused():
    images = np.zeros((3, 8, 8, 1), np.uint8)
    images[2, 7, 7] = 1
    with pytest.raises(DataError, match="no uniform border") as error:
        find_border_box(images, names=["a.png", "b.png", "c.png"])
    assert "c.png" in one_line(error) and "--set data.crop=T,L,B,R" in one_line(error)
    with pytest.raises(DataError, match="nothing but the border value") as error:
        find_border_box(np.zeros((2, 8, 8, 1), np.uint8))
    one_line(error)


@pytest.mark.parametrize("crop, message", [
    ("centre", "is not a box"), ("1,2,3", "has 3 numbers, not 4"),
    ("5,5,2,9", "empty or negative"), ("-1,0,4,4", "empty or negative"),
    ("1.5,0,4,4", "is not a box")])
def test_bad_crop_strings_are_refused_in_one_line(crop, message):
    with pytest.raises(UserError, match=message) as error:
        check_data_config(DataConfig(crop=crop))
    assert "--set data.crop=" in one_line(error)


def test_a_given_box_and_what_cannot_take_one(tmp_path):
    source = bordered_images(count=3)
    source[:, :, 0] = 30  # the left column: no longer a uniform border
    folder = write_folder(tmp_path / "slices", source)
    with pytest.raises(DataError, match="no uniform border"):
        open_folder(folder, crop="auto")
    data = open_folder(folder, crop="4,10,36,42")
    pre = Preprocessing.from_spec(data.spec)
    assert pre.crop_box == (4, 10, 36, 42) and pre.border_value == (0,) and pre.mean is None
    images = data.dataset.take([0, 1, 2])["image"]
    np.testing.assert_array_equal(images, source[:, 4:36, 10:42])  # no image_size: as cut
    np.testing.assert_array_equal(pre.to_source(images)[:, 4:36, 10:42], source[:, 4:36, 10:42])
    with pytest.raises(DataError, match="reaches outside the 48x48 images") as error:
        open_folder(folder, crop="0,0,40,49")
    assert "--set data.crop=0,0,48,48" in one_line(error)
    with pytest.raises(UserError, match="apply to image folders"):
        open_data(DataConfig(crop="auto"))
    with pytest.raises(UserError, match="apply to image folders"):
        open_data(DataConfig(center=True))
    write_folder(tmp_path / "ab" / "trainA", source)
    write_folder(tmp_path / "ab" / "trainB", source)
    with pytest.raises(UserError, match="--images DIR/trainA") as error:
        open_folder(tmp_path / "ab", center=True)
    one_line(error)


def test_uncentred_inputs_are_images_to_float_bit_for_bit():
    images = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)
    pre = Preprocessing.identity((8, 8, 1))
    # Eager and jitted XLA differ in the last bit (jitted, it multiplies by 1 / 127.5), so each
    # is compared with its own kind; a training step runs them jitted.
    for wrap in (lambda f: f, jax.jit):
        expected = np.asarray(wrap(images_to_float)(jax.numpy.asarray(images)))
        got = np.asarray(wrap(pre.to_model)(images))
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
        unit = np.asarray(wrap(lambda x: pre.model_to_unit(pre.to_model(x)))(images))
        np.testing.assert_array_equal(unit.view(np.uint32), expected.view(np.uint32))
    np.testing.assert_array_equal(pre.to_source(images), images)


def test_the_mean_is_the_training_rows_and_centring_inverts(tmp_path):
    source = bordered_images(count=10)
    source[[2, 7]] = 255  # the rows holdout=2 sets aside: they must not count
    data = open_folder(write_folder(tmp_path / "slices", source), center=True, holdout=2)
    assert sorted(np.flatnonzero((data.held_out["image"] == 255).all(axis=(1, 2, 3)))) == [0, 1]
    pre = Preprocessing.from_spec(data.spec)
    assert pre.crop_box is None and pre.size == (48, 48)
    training = source[np.setdiff1d(np.arange(10), [2, 7])]
    expected = training.astype(np.float64).mean() / 255
    assert pre.mean == pytest.approx((expected,), rel=1e-12)
    assert pre.mean[0] < source.astype(np.float64).mean() / 255 - 0.05
    model = np.asarray(pre.to_model(training))
    np.testing.assert_allclose(model, training / 255 - expected, atol=1e-6)
    assert abs(model.mean()) < 1e-6  # centred
    np.testing.assert_allclose(np.asarray(pre.model_to_unit(pre.to_model(training))),
                               training / 127.5 - 1, atol=1e-6)
    # nothing was cut or resized, so the way back is the identity
    np.testing.assert_array_equal(pre.to_source(training), training)


def test_specs_keep_preprocessing_only_when_asked_and_round_trip(tmp_path):
    folder = write_folder(tmp_path / "slices", bordered_images(count=3))
    plain = open_folder(folder, image_size=16)
    assert plain.spec.preprocessing == {} and "preprocessing" not in plain.spec.to_json()
    cropped = open_folder(folder, image_size=16, crop="auto")
    assert "decoded into" in cropped.description  # crop is part of the cache key
    assert cropped.spec.preprocessing["crop_box"] == [8, 8, 40, 40]
    assert DataSpec.from_json(cropped.spec.to_json()) == cropped.spec
    assert Preprocessing.from_json(cropped.spec.preprocessing).to_json() == \
        cropped.spec.preprocessing
    assert DataSpec.from_json(plain.spec.to_json()) == plain.spec


def test_real_brain_slices_crop_resize_centre_and_cache(monkeypatch):
    folder = SHARED_DATASETS / "brain_mri_slices"
    if not folder.is_dir():
        pytest.skip(f"brain_mri_slices not found in {SHARED_DATASETS} (clone beside ../shared)")
    config = dict(crop="auto", image_size=64, center=True)
    with pytest.warns(UserWarning, match="index.csv"):
        data = open_folder(folder, **config)
    assert data.spec.shape() == (64, 64, 1) and len(data.dataset) == 450
    pre = Preprocessing.from_spec(data.spec)
    top, left, bottom, right = pre.crop_box
    assert 0 <= top < bottom <= 256 and 0 <= left < right <= 256
    assert bottom - top == right - left < 256 and pre.border_value == (0,)
    assert pre.source_shape == (256, 256, 1) and 0.05 < pre.mean[0] < 0.95
    monkeypatch.setattr(folders, "decode_image", None)  # a decode would now fail
    with pytest.warns(UserWarning, match="index.csv"):
        again = open_folder(folder, **config)
    assert "read from" in again.description and again.spec == data.spec
    np.testing.assert_array_equal(again.dataset.take([7])["image"], data.dataset.take([7])["image"])
