"""The translation tools without a trained run: `jgan.translate` on folders, the translation
metrics, the domain classifier, and `jgan.tools.evaluate_translation`'s scoring, all driven by a
fake setup whose generator negates its input (plus, when the state says so, a per-key shift)."""

import dataclasses
import json
import math
import zlib

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest

from jgan.config import Config, DataConfig
from jgan.errors import UserError
from jgan.images import to_uint8
from jgan.metrics import domain_classifier as dc
from jgan.metrics.translation import l1_distance, mean_image_baseline, psnr, ssim
from jgan.tools import evaluate_translation as evaluation
from jgan.tools.evaluate_translation import (evaluate_paired, format_table, grid_image,
                                             model_inputs)
from jgan.train.setup import Setup
from jgan import translate
from jgan.translate import SkippedFilesWarning, Translator, main, translate_images

QUIET = dict(log=lambda _: None)


@flax.struct.dataclass
class FakeState:
    shift: float = 0.0  # the largest shift that an image's key adds to its negation
    step: int = 7


@dataclasses.dataclass(frozen=True, kw_only=True)
class NegatingSetup(Setup):
    """Translates by `-image + shift(key)`, with the shift in [-state.shift, state.shift]: the
    output of an image shows which key it got."""

    networks: dict = dataclasses.field(default_factory=dict)
    example_inputs: dict = dataclasses.field(default_factory=dict)
    train_step: object = None
    directions: tuple = ("AtoB",)
    shape: tuple = (8, 8, 3)

    def translation_shape(self, direction):
        if direction not in self.directions:
            raise UserError(f"this fake translates only {self.directions}")
        return self.shape

    def translate(self, state, images, keys, *, direction):
        shift = jax.vmap(lambda key: jax.random.uniform(key, (), minval=-1.0))(keys) * state.shift
        return jnp.clip(-images + shift[:, None, None, None], -1.0, 1.0)


def save(path, image: PIL.Image.Image, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def noise(seed, shape, low=0, high=256):
    return np.random.default_rng(seed).integers(low, high, shape, dtype=np.uint8)


def mixed_folder(root):
    """Images of several sizes and modes, a non-image, a broken image and a hidden one."""
    save(root / "grey8.png", PIL.Image.fromarray(np.full((8, 8), 200, np.uint8)))
    save(root / "grey.png", PIL.Image.fromarray(noise(0, (13, 7))))
    save(root / "sub" / "rgba.png", PIL.Image.fromarray(noise(1, (10, 12, 4)), "RGBA"))
    save(root / "sub" / "deep" / "wide.png",
         PIL.Image.fromarray(noise(2, (9, 9)).astype(np.uint16) * 257))
    save(root / "photo.jpg", PIL.Image.fromarray(noise(3, (16, 20, 3))), quality=90)
    save(root / "palette.png", PIL.Image.fromarray(noise(4, (6, 5, 3))).convert("P"))
    (root / "notes.txt").write_text("not an image")
    (root / "broken.png").write_bytes(b"\x89PNG but not really")
    save(root / ".hidden.png", PIL.Image.fromarray(noise(5, (8, 8, 3))))


def test_translate_keeps_names_sizes_and_formats(tmp_path):
    mixed_folder(tmp_path / "in")
    with pytest.warns(SkippedFilesWarning, match=r"skipped 2 .*broken\.png, notes\.txt$"):
        written = translate_images(NegatingSetup(), FakeState(), tmp_path / "in", tmp_path / "out",
                                   **QUIET)
    names = ["grey.png", "grey8.png", "palette.png", "photo.jpg", "sub/deep/wide.png",
             "sub/rgba.png"]
    assert written == [tmp_path / "out" / name for name in names]
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out").rglob("*")
                  if p.is_file()) == names  # no temporary or hidden file left
    for name in names:
        with PIL.Image.open(tmp_path / "in" / name) as source, \
                PIL.Image.open(tmp_path / "out" / name) as output:
            assert output.size == source.size
            assert output.mode == "RGB"  # the generator's three channels, whatever came in
            assert output.format == ("JPEG" if name.endswith(".jpg") else "PNG")
    # Same size as the model: no resize, so the negation is exact: 255 - 200.
    assert np.all(np.asarray(PIL.Image.open(tmp_path / "out" / "grey8.png")) == 55)


def test_translate_to_a_one_channel_generator(tmp_path):
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    save(tmp_path / "in" / "red.png", PIL.Image.fromarray(red))
    setup = NegatingSetup(shape=(8, 8, 1))
    translate_images(setup, FakeState(), tmp_path / "in", tmp_path / "out", **QUIET)
    output = PIL.Image.open(tmp_path / "out" / "red.png")
    assert output.mode == "L"
    assert np.all(np.asarray(output) == 255 - 76)  # Pillow's "L" of pure red is 76


def test_translation_depends_on_name_pixels_and_seed_alone(tmp_path):
    for index, name in enumerate(["a.png", "b.png", "c.png", "d/e.png"]):
        save(tmp_path / "many" / name, PIL.Image.fromarray(noise(index, (8, 8, 3))))
    save(tmp_path / "one" / "b.png", PIL.Image.open(tmp_path / "many" / "b.png"))
    save(tmp_path / "one" / "z.png", PIL.Image.fromarray(noise(9, (8, 8, 3))))
    setup, shifted = NegatingSetup(), FakeState(shift=0.5)

    def run(folder, out, **options):
        translate_images(setup, shifted, tmp_path / folder, tmp_path / out, **QUIET, **options)
        return (tmp_path / out / "b.png").read_bytes()

    alone = run("one", "out_one", batch=8)
    # The key of b.png is fold_in(key(seed), crc32("b.png")), whatever else is in the folder.
    key = jax.random.fold_in(jax.random.key(0), zlib.crc32(b"b.png"))
    shift = float(jax.random.uniform(key, (), minval=-1.0)) * shifted.shift
    pixels = np.asarray(PIL.Image.open(tmp_path / "one" / "b.png"), np.float32) / 127.5 - 1
    expected = to_uint8(np.clip(-pixels + shift, -1, 1)).astype(int)
    output = np.asarray(PIL.Image.open(tmp_path / "out_one" / "b.png")).astype(int)
    assert np.abs(output - expected).max() <= 1
    # Bytes across batch sizes: this fake is elementwise (its only products, by 2 and 0.5, are
    # exact), so a pixel's rounding cannot depend on the batch; a real G's would need a tolerance.
    assert run("many", "out_batch1", batch=1) == alone
    assert run("many", "out_batch3", batch=3) == alone
    assert run("many", "out_seed1", batch=3, seed=1) != alone
    # The shift comes from the name: two files with equal pixels differ.
    assert (tmp_path / "out_batch1" / "a.png").read_bytes() != \
        (tmp_path / "out_batch3" / "c.png").read_bytes()


def folder_with(tmp_path, *files):
    folder = tmp_path / "in"
    folder.mkdir(parents=True)
    for name in files:
        if name.endswith(".png"):
            save(folder / name, PIL.Image.fromarray(noise(0, (8, 8, 3))))
        else:
            (folder / name).write_text("x")
    return folder


@pytest.mark.parametrize("make, message", [
    (lambda t: (t / "missing", t / "out", {}), "--input .*missing does not exist"),
    (lambda t: (folder_with(t, "a.png") / "a.png", t / "out", {}), "is a file: pass the folder"),
    (lambda t: (folder_with(t), t / "out", {}),
     r"holds no readable image \(PNG, JPEG, BMP or TIFF\): it is empty"),
    (lambda t: (folder_with(t, "a.txt", "b.jpg"), t / "out", {}),
     r"holds no readable image .*2 file\(s\) skipped, e.g. a.txt, b.jpg"),
    (lambda t: (folder_with(t, "a.png"), folder_with(t.parent, "x") / "x", {}),
     "--out .*x is a file"),
    (lambda t: (folder_with(t, "a.png"), t / "in" / "out", {}), "--out .* is inside --input"),
    (lambda t: (folder_with(t, "a.png"), t / "in", {}), "--out .* is inside --input"),
    (lambda t: (folder_with(t, "a.png"), t / "out", {"direction": "BtoA"}),
     "--direction BtoA: this run translates only AtoB"),
    (lambda t: (folder_with(t, "a.png"), t / "out", {"batch": 0}), "--batch 0 is not positive"),
])
def test_translate_refusals_are_one_line(tmp_path, make, message):
    input_dir, out_dir, options = make(tmp_path / "case")
    with pytest.raises(UserError, match=message) as error:
        translate_images(NegatingSetup(), FakeState(), input_dir, out_dir, **QUIET, **options)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "case" / "out").exists()


def test_a_latent_run_translates_nothing(tmp_path):
    latent = Setup(networks={}, example_inputs={}, train_step=None)
    with pytest.raises(UserError, match="draws images from latents and translates none"):
        translate_images(latent, FakeState(), folder_with(tmp_path, "a.png"), tmp_path / "out",
                         **QUIET)


def test_main_reports_errors_before_reading_the_run(tmp_path, capsys):
    empty = folder_with(tmp_path)
    assert main([str(tmp_path / "no_run"), "--input", str(empty), "--out",
                 str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --input") and "no readable image" in error
    assert error.count("\n") == 1
    folder_with(tmp_path / "other", "a.png")
    assert main([str(tmp_path / "no_run"), "--input", str(tmp_path / "other" / "in"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_metrics_of_identical_images():
    images = noise(0, (3, 16, 16, 3))
    assert np.all(l1_distance(images, images) == 0.0)
    assert np.all(np.isinf(psnr(images, images)))
    np.testing.assert_allclose(ssim(images, images), 1.0, atol=1e-5)
    # uint8 and [0, 1] floats are one scale
    np.testing.assert_allclose(l1_distance(images, images[::-1]),
                               l1_distance(images / 255.0, images[::-1] / 255.0), rtol=1e-6)


def test_l1_and_psnr_by_hand():
    black = np.zeros((1, 2, 2, 1), np.uint8)
    one_white = black.copy()
    one_white[0, 0, 0, 0] = 255
    np.testing.assert_allclose(l1_distance(black, one_white), [0.25], rtol=1e-6)
    np.testing.assert_allclose(psnr(black, one_white), [10 * math.log10(4)], rtol=1e-5)
    with pytest.raises(UserError, match="11x11 window"):
        ssim(black, one_white)
    with pytest.raises(UserError, match="one shape"):
        l1_distance(black, np.zeros((1, 2, 3, 1), np.uint8))


def test_mean_image_baseline_by_hand():
    train = np.stack([np.zeros((16, 16, 1), np.uint8), np.full((16, 16, 1), 255, np.uint8)])
    test = train[::-1]  # white, then black: both 0.5 from the mean grey
    scores = mean_image_baseline(train, test)
    np.testing.assert_allclose(scores["l1"], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(scores["psnr"], [10 * math.log10(4)] * 2, rtol=1e-5)
    c1 = 0.01 ** 2  # flat images: SSIM is its luminance term (2 mx my + c1) / (mx^2 + my^2 + c1)
    np.testing.assert_allclose(scores["ssim"], [(1 + c1) / (1.25 + c1), c1 / (0.25 + c1)],
                               rtol=1e-3)


def dark_and_bright(seed, count, size=12):
    """Domain A dark colour noise, domain B bright grey noise (one channel)."""
    return (noise(seed, (count, size, size, 3), 0, 80),
            noise(seed + 1, (count, size + 4, size + 4, 1), 170, 256))


TINY = dict(size=8, patch=3, centroids=8, samples=200)


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    cache = tmp_path_factory.mktemp("classifier_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JGAN_CACHE_DIR", str(cache))
        messages = []
        classifier = dc.train_domain_classifier(*dark_and_bright(0, 16), seed=3,
                                                log=messages.append, **TINY)
    return classifier, messages, cache


def test_domain_classifier_learns_separable_domains(tiny_classifier):
    classifier, messages, _ = tiny_classifier
    assert classifier.trained and "trained on 16 A and 16 B" in messages[0]
    held_A, held_B = dark_and_bright(10, 20)
    assert dc.domain_accuracy(classifier, held_A, "A") == 1.0
    assert dc.domain_accuracy(classifier, held_B, "B") == 1.0
    assert dc.domain_accuracy(classifier, held_A, "B") == 0.0
    probs = classifier.prob_B(np.concatenate([held_A[:2], np.repeat(held_B[:2, :12, :12], 3, -1)]))
    assert probs.shape == (4,) and np.all(probs[:2] < 0.5) and np.all(probs[2:] > 0.5)
    with pytest.raises(UserError, match="domain 'C' is not A or B"):
        dc.domain_accuracy(classifier, held_A, "C")


def test_domain_classifier_is_cached_and_deterministic(tiny_classifier, tmp_path, monkeypatch):
    first, _, cache = tiny_classifier
    monkeypatch.setenv("JGAN_CACHE_DIR", str(cache))
    assert first.cache.parent == cache / "domain_classifiers"
    mtime = first.cache.stat().st_mtime_ns
    messages = []
    again = dc.train_domain_classifier(*dark_and_bright(0, 16), seed=3, log=messages.append,
                                       **TINY)
    assert not again.trained and messages == [f"domain classifier read from {first.cache}"]
    assert first.cache.stat().st_mtime_ns == mtime
    assert jax.tree.all(jax.tree.map(np.array_equal, again.params, first.params))
    # Trained afresh elsewhere: the same bits; another seed: another classifier.
    monkeypatch.setenv("JGAN_CACHE_DIR", str(tmp_path))
    fresh = dc.train_domain_classifier(*dark_and_bright(0, 16), seed=3, **TINY, **QUIET)
    assert fresh.trained and fresh.cache.name == first.cache.name
    assert jax.tree.all(jax.tree.map(np.array_equal, fresh.params, first.params))
    assert dc.train_domain_classifier(*dark_and_bright(0, 16), seed=4, **TINY,
                                      **QUIET).cache != first.cache


def test_evaluate_paired_scores_against_targets_and_the_baseline():
    setup = NegatingSetup(directions=("AtoB", "BtoA"), shape=(16, 16, 3))
    images_A = noise(0, (5, 16, 16, 3))
    examples = {"image_A": images_A, "image_B": 255 - images_A}  # B is exactly -A in [-1, 1]
    train = {"image_A": noise(1, (7, 16, 16, 3)), "image_B": noise(2, (7, 16, 16, 3))}
    scores, rows = evaluate_paired(Translator(setup, FakeState(), batch=2), examples, train)
    for direction in ("AtoB", "BtoA"):
        entry = scores[direction]
        assert entry["count"] == 5 and entry["l1"] == 0.0 and math.isinf(entry["psnr"])
        assert entry["ssim"] == pytest.approx(1.0, abs=1e-5)
        assert 0.2 < entry["baseline"]["l1"] < 0.4 and entry["baseline"]["ssim"] < 0.1
        # the input as the output: |A - B| = |2A - 1| in [0, 1] units
        assert entry["identity"]["l1"] == pytest.approx(
            float(np.mean(l1_distance(images_A, 255 - images_A))))
    assert len(rows) == 8 and all(len(row) == 3 for row in rows)
    assert grid_image(rows).shape == (8 * 18 + 2, 3 * 18 + 2, 3)
    table = format_table({"run_dir": "run", "step": 1, "data": "x", "kind": "paired",
                          "examples": "held_out", "seed": 0, "directions": scores})
    assert "AtoB" in table and "mean-target baseline" in table and "identity baseline" in table
    with pytest.raises(UserError, match="are 16x16 but the generator takes 8x8"):
        model_inputs(images_A, (8, 8, 3), "the image_A images evaluated")


def _paired_result(l1: float) -> dict:
    scores = {"l1": l1, "psnr": 20.0, "ssim": 0.5}
    return {"run_dir": "run", "step": 260, "data": "x", "kind": "paired", "examples": "held_out",
            "seed": 0, "directions": {"AtoB": {"count": 8, **scores, "baseline": scores,
                                               "identity": {**scores, "l1": 0.053}}}}


def _unpaired_result(accuracy_B: float) -> dict:
    return {"run_dir": "run", "step": 100, "data": "x", "kind": "unpaired",
            "examples": "held_out", "seed": 0,
            "directions": {"AtoB": {"count": 8, "success_rate": 1.0}},
            "classifier": {"accuracy_A": 1.0, "accuracy_B": accuracy_B, "count_A": 8,
                           "count_B": 20, "train_A": 50, "train_B": 50}}


@pytest.mark.parametrize("result, warned", [
    # A grey -> colour Pix2Pix scored L1 0.081 beside the identity's 0.053, and nothing said so
    (_paired_result(0.081), "AtoB's L1 0.0810 is worse than the identity baseline's 0.0530 (the "
                            "input as the output): the run has not learnt to translate yet"),
    (_paired_result(0.030), None),
    # 45% of real B images (dogs) called B, and AtoB's 100% success was printed as it was
    (_unpaired_result(0.45), "the domain classifier is near chance on the real images (A 1.000, "
                             "B 0.450; under 0.75 a side): the success rates say little"),
    (_unpaired_result(0.95), None),
])
def test_the_table_says_when_a_score_says_little(result, warned):
    table = format_table(result)
    warnings = [line for line in table.splitlines() if line.startswith("note: ")]
    assert warnings == ([f"note: {warned}"] if warned else [])
    if result["kind"] == "unpaired":
        success = next(line for line in table.splitlines() if line.startswith("AtoB"))
        assert success.split()[2] == ("1.000?" if warned else "1.000")


def fake_run(monkeypatch, module, setup, **data):
    """`module.load_run` answers with `setup`, a zero-shift state and a config of `data`."""
    config = Config(data=DataConfig(**data))
    monkeypatch.setattr(module, "load_run", lambda run_dir, step=None: (setup, FakeState(), config))


def test_translate_main_prints_one_warning_and_a_summary(tmp_path, monkeypatch, capsys):
    fake_run(monkeypatch, translate, NegatingSetup())
    mixed_folder(tmp_path / "in")
    bars = []

    class RecordedBar(translate.tqdm):
        def __init__(self, *args, **kwargs):
            # The bar shows after its 2 s delay, which a loaded machine can pass here.
            super().__init__(*args, **{**kwargs, "delay": 1e9})

        def close(self):
            bars.append((self.n, self.total))
            super().close()

    monkeypatch.setattr(translate, "tqdm", RecordedBar)
    assert main(["run", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                 "--batch", "4"]) == 0
    out, err = capsys.readouterr()
    assert err == (f"warning: skipped 2 unreadable or non-image file(s) in {tmp_path / 'in'}: "
                   "broken.png, notes.txt\n")
    assert out == (f"translated 6 image(s) AtoB from {tmp_path / 'in'} into {tmp_path / 'out'}"
                   ", skipped 2\n")
    assert set(bars) == {(6, 6)}  # the broken PNG is no image translated (it used to count as one)


def ab_folder(root, split, names_A, names_B, size=16):
    for side, names, low, high in (("A", names_A, 0, 80), ("B", names_B, 170, 256)):
        for index, name in enumerate(names):
            save(root / f"{split}{side}" / f"{name}.png",
                 PIL.Image.fromarray(noise(index, (size, size, 3), low, high)))


def test_evaluate_main_on_held_out_and_split_pairs(tmp_path, monkeypatch, capsys):
    data = tmp_path / "pairs"
    ab_folder(data, "train", "abcdef", "abcdef")
    ab_folder(data, "test", "xyz", "xyz")
    fake_run(monkeypatch, evaluation, NegatingSetup(shape=(16, 16, 3)), images=str(data),
             holdout=2)
    out = tmp_path / "evaluation.json"
    assert evaluation.main(["run", "--out", str(out), "--grid", str(tmp_path / "grid.png")]) == 0
    result = json.loads(out.read_text())
    assert result["kind"] == "paired" and result["examples"] == "held_out"
    assert result["step"] == 7 and result["directions"]["AtoB"]["count"] == 2
    assert set(result["directions"]["AtoB"]["baseline"]) == {"l1", "psnr", "ssim"}
    assert PIL.Image.open(tmp_path / "grid.png").size == (3 * 18 + 2, 2 * 18 + 2)
    assert "held-out paired examples of pairs" in capsys.readouterr().out
    assert evaluation.main(["run", "--out", str(out), "--split", "test"]) == 0
    assert json.loads(out.read_text())["directions"]["AtoB"]["count"] == 3
    fake_run(monkeypatch, evaluation, NegatingSetup(shape=(16, 16, 3)), images=str(data))
    assert evaluation.main(["run", "--out", str(out)]) == 2
    assert "held out no example (data.holdout=0): pass --split test" in capsys.readouterr().err


def test_evaluate_unpaired_run_end_to_end(tmp_path, monkeypatch, tiny_classifier):
    # 17 a side, one held out: the classifier's step has the shapes the fixture compiled.
    data = tmp_path / "seasons"
    names = [f"{index:02d}" for index in range(17)]
    ab_folder(data, "train", names, [f"b{name}" for name in names], size=12)
    for path in (data / "trainB").iterdir():  # domain B grey, as a scan of snow might be
        PIL.Image.open(path).convert("L").save(path)
    two_way = NegatingSetup(directions=("AtoB", "BtoA"), shape=(12, 12, 3))
    fake_run(monkeypatch, evaluation, two_way, images=str(data), holdout=1)
    monkeypatch.setenv("JGAN_CACHE_DIR", str(tmp_path / "cache"))
    result = evaluation.evaluate_translation("run", classifier_options=TINY, **QUIET)
    assert result["kind"] == "unpaired" and result["step"] == 7
    classifier = result["classifier"]
    assert (classifier["train_A"], classifier["train_B"]) == (16, 16)
    assert classifier["accuracy_A"] == classifier["accuracy_B"] == 1.0
    assert classifier["near_chance"] is False
    # Negation turns dark into bright and back: every fake passes, every cycle closes.
    for direction in ("AtoB", "BtoA"):
        assert result["directions"][direction]["count"] == 1
        assert result["directions"][direction]["success_rate"] == 1.0
        assert result["directions"][direction]["cycle_l1"] == 0.0
    assert "AtoB" in format_table(result) and "domain classifier" in format_table(result)
    messages = []
    one_way = dataclasses.replace(two_way, directions=("AtoB",))
    fake_run(monkeypatch, evaluation, one_way, images=str(data), holdout=1)
    result = evaluation.evaluate_translation("run", classifier_options=TINY,
                                             log=messages.append)
    assert "cycle_l1" not in result["directions"]["AtoB"]
    assert any(message.startswith("domain classifier read from") for message in messages)
