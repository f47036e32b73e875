"""Feature networks, reference statistics, the evaluator, `jgan.evaluate` and --eval-every."""

import csv
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from conftest import REPO, tiny_config, with_train
from jgan import weights
from jgan.checkpoint import Checkpointer
from jgan.data import find_dataset
from jgan.errors import UserError
from jgan.metrics import classifier, distances, evaluation, features, inception, reference
from jgan.metrics.reference import split_images
from jgan.metrics.train_classifier import accuracy, train_classifier
from jgan.tools import evaluate as evaluate_tool
from jgan.tools import sample as sample_tool
from jgan.train import loop


@pytest.fixture(scope="module")
def mnist_network():
    return features.classifier_network("mnist")


@pytest.fixture(scope="module")
def bundled_test_images():
    return split_images(find_dataset("mnist").open("test"), None)


@pytest.mark.slow
def test_classifier_training_is_deterministic_and_learns(tmp_path):
    # The second run leaves out the untrained measurement: it must not disturb training either.
    (params, meta), (again, _) = [
        train_classifier("mnist", steps=30, batch_size=32, measure_untrained=measure,
                         log=lambda _: None) for measure in (True, False)]
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    # Against the same initial network: 30 steps take it from chance (0.10) to about 0.66.
    assert meta["steps"] == 30
    assert meta["test_accuracy"] >= meta["untrained_test_accuracy"] + 0.3
    assert meta["test_accuracy"] >= 0.4  # chance is 0.1 on the 10 classes
    weights.save_weights(tmp_path / "w.npz", params, meta)
    loaded, loaded_meta = classifier.load_weights(tmp_path / "w.npz")
    assert loaded_meta == meta
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("dataset, target", [("mnist", 0.99), ("fashion_mnist", 0.90)])
def test_shipped_classifier_reaches_its_target_on_the_full_test_split(shared_datasets, dataset,
                                                                      target):
    params, meta = classifier.shipped_weights(dataset)
    images, labels = split_images(find_dataset(dataset, str(shared_datasets)).open("test"), None)
    assert len(labels) == 10000
    measured = accuracy(classifier.DigitClassifier(), params, images, labels)
    assert measured >= target
    assert measured == pytest.approx(meta["test_accuracy"], abs=1e-4)


def test_feature_networks_refuse_bad_input_in_one_line(mnist_network, tmp_path, monkeypatch):
    monkeypatch.delenv(features.INCEPTION_WEIGHTS_ENV, raising=False)
    cases = [
        (lambda: mnist_network(np.zeros((2, 28, 28, 1), np.float32)), "uint8"),
        (lambda: mnist_network(np.zeros((2, 32, 32, 3), np.uint8)), "--features inception"),
        (lambda: features.classifier_network("cifar10"), "ships no classifier for cifar10"),
        (lambda: features.inception_network(), "--inception-weights"),
        (lambda: features.inception_network(tmp_path / "missing.npz"), "not found"),
        (lambda: features.feature_network("vgg", dataset="mnist"), "unknown feature network"),
    ]
    for call, fragment in cases:
        with pytest.raises(UserError, match=fragment) as error:
            call()
        assert "\n" not in str(error.value)


def _random_fid_state_dict(seed=0):
    """A state dict with pytorch-fid's names and shapes, drawn at random."""
    shapes = jax.eval_shape(inception.FIDInceptionV3().init, jax.random.key(0),
                            jnp.zeros((1, 299, 299, 3)))
    rng = np.random.default_rng(seed)
    torch_names = {"scale": "weight", "mean": "running_mean", "var": "running_var"}
    state = {}
    for collection in ("params", "batch_stats"):
        for path, leaf in traverse_util.flatten_dict(shapes[collection]).items():
            *prefix, kind = path
            shape = leaf.shape
            if kind == "kernel":  # back to PyTorch's [out, in, kh, kw] (or [out, in])
                shape = shape[::-1] if len(shape) == 2 else (shape[3], shape[2], *shape[:2])
            value = (np.abs(rng.normal(1.0, 0.1, shape)) if kind == "var"
                     else rng.normal(0.0, 0.05, shape))
            state[".".join([*prefix, torch_names.get(kind, "weight" if kind == "kernel" else
                                                      kind)])] = value.astype(np.float32)
    return state


@pytest.mark.slow
def test_inception_loads_fid_weights_and_names_what_is_wrong(tmp_path):
    state = _random_fid_state_dict()
    assert len(state) == 284 + 188  # 94 conv-BN blocks and the fc layer
    np.savez(tmp_path / "fid.npz", **state)
    network = features.inception_network(tmp_path / "fid.npz")
    feats, logits = network(np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), np.uint8))
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert np.all(np.isfinite(feats)) and feats.std() > 0
    missing = dict(state)
    del missing["Mixed_6b.branch7x7_2.conv.weight"]
    with pytest.raises(UserError, match="lacks Mixed_6b.branch7x7_2.conv.kernel"):
        inception.variables_from_state_dict(missing, "x.pth")
    wrong = {**state, "fc.weight": np.zeros((1000, 2048), np.float32)}
    with pytest.raises(UserError, match=r"fc.kernel of shape \(2048, 1000\)"):
        inception.variables_from_state_dict(wrong, "x.pth")


def test_reference_statistics_are_cached_by_network_and_n(mnist_network, tmp_path, monkeypatch):
    monkeypatch.setenv("JGAN_CACHE_DIR", str(tmp_path))
    calls = []

    def counting(images):
        calls.append(len(images))
        return mnist_network(images)

    counted = features.FeatureNetwork(mnist_network.name, counting, mnist_network.image_shape)
    first = reference.reference(counted, "mnist", num=300, log=lambda _: None)
    again = reference.reference(counted, "mnist", num=300, log=lambda _: None)
    assert calls == [300]
    np.testing.assert_array_equal(first.features, again.features)
    reference.reference(counted, "mnist", num=200, log=lambda _: None)
    assert calls == [300, 200]
    assert len(list(tmp_path.glob("reference/mnist-*/test-classifier-mnist-*-n*.npz"))) == 2
    with pytest.raises(UserError, match="--ref-num 2000 or fewer"):
        reference.reference(counted, "mnist", num=5000)


@pytest.mark.slow
def test_metrics_tell_real_digits_from_noise_and_from_one_class(mnist_network,
                                                                 bundled_test_images):
    images, labels = bundled_test_images
    real_features, real_logits = mnist_network(images[:1000])
    ref = reference.Reference(real_features, real_logits, labels[:1000], {})

    def measure(fakes, fake_labels, metrics=evaluation.METRICS):
        return evaluation.compute_metrics(ref, *mnist_network(fakes), metrics, fake_labels)

    held_out = measure(images[1000:], labels[1000:])
    noise = measure(np.random.default_rng(0).integers(0, 256, (1000, 28, 28, 1), np.uint8),
                    labels[1000:])
    ones = images[1000:][labels[1000:] == 1]
    collapsed = measure(ones, np.ones(len(ones), np.int32))
    assert held_out["fid"] < 10 and noise["fid"] > 500 and collapsed["fid"] > 500
    assert abs(held_out["kid"]) < noise["kid"] / 100
    assert held_out["is"] > 9 and noise["is"] < 1.5 and collapsed["is"] < 1.1
    assert held_out["recall"] > 0.8 and held_out["coverage"] > 0.9
    assert collapsed["recall"] < 0.2 and collapsed["coverage"] < 0.2
    assert noise["recall"] < 0.05 and noise["coverage"] < 0.05
    assert held_out["class_accuracy"] > 0.98 and noise["class_accuracy"] < 0.3
    assert held_out["ifid"] < noise["ifid"] / 20 and held_out["ifid_max"] >= held_out["ifid"]
    assert evaluation.compute_metrics(ref, real_features, real_logits, ("fid",))["fid"] < 1e-6
    # Images in blocks of one label, as a conditional run draws them, still score as a mixture.
    by_label = np.argsort(labels[1000:], kind="stable")
    assert measure(images[1000:][by_label], labels[1000:][by_label], ("is",))["is"] == (
        pytest.approx(held_out["is"], rel=0.05))
    with pytest.raises(UserError, match="conditional"):
        evaluation.compute_metrics(ref, real_features, real_logits, ("acc",))


def _two_class_reference():
    """Features of 2 classes far apart, of 6 and 5 images, in an interleaved order."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1])
    features = rng.normal(size=(len(labels), 3)) + 10.0 * labels[:, None]
    return reference.Reference(features, np.zeros((len(labels), 10)), labels, {})


def test_intra_class_fid_is_the_mean_of_each_class_fid():
    ref = _two_class_reference()
    logits = np.zeros((len(ref.labels), 10))

    def ifid(labels):
        return evaluation.compute_metrics(ref, ref.features, logits, ("ifid",), labels)

    # Each class's images are exactly that class's reference images: every class FID is 0 ...
    same = ifid(ref.labels)
    assert set(same) == {"ifid", "ifid_max"}
    assert same["ifid"] == pytest.approx(0.0, abs=1e-8) and same["ifid_max"] < 1e-8
    # ... and with the labels swapped, each class's images are the other class's.
    swapped = ifid(1 - ref.labels)
    per_class = [distances.fid(ref.features[ref.labels == 0], ref.features[ref.labels == 1]),
                 distances.fid(ref.features[ref.labels == 1], ref.features[ref.labels == 0])]
    assert min(per_class) > 250  # the means are 10 * sqrt(3) apart
    assert swapped["ifid"] == pytest.approx(np.mean(per_class), rel=1e-9)
    assert swapped["ifid_max"] == pytest.approx(max(per_class), rel=1e-9)


def test_intra_class_fid_refusals_are_one_line():
    ref = _two_class_reference()
    unlabelled = reference.Reference(ref.features, ref.logits, None, {})
    logits = np.zeros((4, 10))
    cases = [
        (ref, None, "needs a conditional generator: drop ifid"),
        (unlabelled, [0, 0, 1, 1], "needs a reference split with class labels: drop ifid"),
        (ref, [0, 0, 0, 1], "class 1 has 1 of the 4 generated images: .* use --num 4 or more"),
        (ref, [0, 0, 2, 2], "class 2 has 0 of the 11 reference images: .* raise --ref-num"),
    ]
    for ref_case, labels, fragment in cases:
        with pytest.raises(UserError, match=fragment) as error:
            evaluation.compute_metrics(ref_case, ref.features[:4], logits, ("ifid",),
                                       None if labels is None else np.array(labels))
        assert "\n" not in str(error.value)


def test_evaluate_tool_adds_ifid_for_conditional_runs_and_training_does_not():
    assert evaluation.default_metrics(0, intra_class=True) == ("fid", "kid", "is", "pr")
    assert evaluation.default_metrics(10) == ("fid", "kid", "is", "pr", "acc")
    assert evaluation.default_metrics(10, intra_class=True)[-2:] == ("acc", "ifid")


def test_class_shares_are_the_histogram_of_the_classifier_s_choices():
    # 20 images: 2 of class 0, none of 1, 5 of 2, 13 of 3 (of 4 classes), by their largest logit.
    choices = np.repeat([0, 2, 3], [2, 5, 13])
    logits = np.random.default_rng(0).normal(size=(20, 4)) - 10.0
    logits[np.arange(20), choices] = 1.0
    shares = evaluation.class_shares(logits)
    assert shares.tolist() == [0.1, 0.0, 0.25, 0.65]
    ref = reference.Reference(np.zeros((4, 3)), np.zeros((4, 4)), None, {})
    assert evaluation.compute_metrics(ref, None, logits, ("share",)) == {
        "class_share_min": 0.0, "class_share_max": 0.65}
    assert evaluate_tool.format_class_shares(shares) == "class share %   0:10.0 1:0.0 2:25.0 3:65.0"
    table = evaluate_tool.format_table(
        {"run_dir": "run", "step": 4, "num": 20, "features": "classifier-mnist-x",
         "reference": {"num": 4, "dataset": "mnist", "split": "test"},
         "metrics": {"class_share_min": 0.0, "class_share_max": 0.65},
         "class_shares": shares.tolist(), "reference_metrics": {"is": 9.9}})
    assert table.splitlines()[2:] == ["class_share_min            0",
                                      "class_share_max         0.65",
                                      "is of real data          9.9",
                                      "class share %   0:10.0 1:0.0 2:25.0 3:65.0"]


def test_class_shares_come_by_default_with_the_classifier_only():
    assert evaluation.default_metrics(0, class_shares=True) == ("fid", "kid", "is", "pr", "share")
    assert evaluation.default_metrics(10, intra_class=True, class_shares=True)[-3:] == (
        "share", "acc", "ifid")
    with pytest.raises(UserError, match="drop share from --metrics or use --features classifier"):
        evaluation.make_evaluator(dataset="mnist", num_classes=0, metrics=("fid", "share"),
                                  features="inception")


def test_evaluator_requests_are_checked_before_any_work():
    with pytest.raises(UserError, match="--num 1000"):
        evaluation.make_evaluator(dataset="mnist", num_classes=10, num=999)
    with pytest.raises(UserError, match="drop acc"):
        evaluation.make_evaluator(dataset="mnist", num_classes=0, metrics=("fid", "acc"))
    with pytest.raises(UserError, match="drop ifid"):
        evaluation.make_evaluator(dataset="mnist", num_classes=0, metrics=("fid", "ifid"))
    with pytest.raises(UserError, match="use --num 20 or more"):
        evaluation.make_evaluator(dataset="mnist", num_classes=10, num=10, metrics=("ifid",))
    with pytest.raises(UserError, match="unknown metric 'fdi'"):
        evaluation.parse_metrics("fid,fdi")


def _eval_rows(workdir):
    with open(workdir / "history.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row["eval/fid"]]


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    """A tiny DCGAN trained 4 steps with an evaluation every 2 (and at the end)."""
    workdir = tmp_path_factory.mktemp("evaluated")
    config = with_train(tiny_config(), eval_every=2, eval_num=200)
    loop.train(config, workdir, log=lambda _: None)
    return workdir, config


@pytest.mark.slow
def test_eval_every_logs_metrics_and_keeps_the_best_checkpoint(evaluated_run):
    workdir, _ = evaluated_run
    rows = _eval_rows(workdir)
    assert [row["step"] for row in rows] == ["2", "4"]
    assert {"eval/kid", "eval/is", "eval/precision", "eval/recall"} <= set(rows[0])
    best_steps = [int(p.name) for p in (workdir / "best").iterdir() if p.name.isdigit()]
    assert len(best_steps) == 1 and str(best_steps[0]) in [row["step"] for row in rows]
    best = Checkpointer(workdir / "best")
    best_fid = best.restore_meta(best_steps[0])["eval"]["fid"]
    best.close()
    assert best_fid == pytest.approx(min(float(row["eval/fid"]) for row in rows), rel=1e-5)


@pytest.mark.slow
def test_resumed_evaluated_run_equals_the_uninterrupted_one(evaluated_run, tmp_path):
    workdir, config = evaluated_run
    loop.train(with_train(config, steps=2), tmp_path, log=lambda _: None)
    loop.train(config, tmp_path, log=lambda _: None)
    assert [{k: v for k, v in row.items() if k.startswith("eval/")} for row in _eval_rows(tmp_path)
            ] == [{k: v for k, v in row.items() if k.startswith("eval/")}
                  for row in _eval_rows(workdir)]


@pytest.mark.slow
def test_evaluate_refuses_a_metric_the_run_cannot_give_before_reading_its_state(evaluated_run,
                                                                               monkeypatch):
    workdir, _ = evaluated_run

    def unread(*args, **kwargs):
        raise AssertionError("the checkpoint was read before the request was checked")

    monkeypatch.setattr(sample_tool, "abstract_train_state", unread)
    for metrics, problem in ((("fid", "acc"), "drop acc"), (("ifid",), "drop ifid"),
                             (("share",), "use --features classifier")):
        with pytest.raises(UserError, match=problem):
            evaluate_tool.evaluate_run(workdir, num=200, metrics=metrics, features="inception"
                                       if metrics == ("share",) else "classifier")


@pytest.mark.slow
def test_eval_every_logs_the_extreme_class_shares_that_evaluate_reports(evaluated_run):
    workdir, _ = evaluated_run
    final = _eval_rows(workdir)[-1]
    low, high = float(final["eval/class_share_min"]), float(final["eval/class_share_max"])
    assert 0.0 <= low <= 0.1 <= high <= 1.0 and low < high
    # The same latents (seed 0, 200 images) as training's last evaluation: the same shares.
    result = evaluate_tool.evaluate_run(workdir, num=200, metrics=("share",),
                                        log=lambda _: None)
    shares = result["class_shares"]
    assert len(shares) == 10 and sum(shares) == pytest.approx(1.0)
    assert all(200 * share == round(200 * share) for share in shares)
    assert (min(shares), max(shares)) == pytest.approx((low, high), abs=1e-6)
    assert result["metrics"] == {"class_share_min": min(shares), "class_share_max": max(shares)}


ERRORS = {
    "acc": (["--metrics", "fid,acc"], "class accuracy (acc) needs a conditional generator"),
    "fdi": (["--metrics", "fdi"], "unknown metric"),
    "inception": (["--features", "inception"], "--inception-weights"),
}


@pytest.fixture(scope="module")
def evaluations(evaluated_run, tmp_path_factory):
    """`python -m jgan.tools.evaluate` on the evaluated run, every way the tests below call it,
    all at once (each process spends seconds importing; CI has two cores)."""
    workdir, _ = evaluated_run
    out = tmp_path_factory.mktemp("evaluations")
    commands = {"final": ["--num", 200, "--metrics", "fid,kid,is,pr,dc"],
                "best": ["--num", 200, "--metrics", "fid", "--best", "--out", out / "best.json"],
                **{name: ["--num", 20, *args] for name, (args, _) in ERRORS.items()}}
    started = {name: subprocess.Popen(
        [sys.executable, "-m", "jgan.tools.evaluate", str(workdir), *map(str, args)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, args in commands.items()}
    results = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout,
                                                    stderr)
    return out, results


@pytest.mark.slow
def test_evaluate_cli_matches_the_training_evaluation(evaluated_run, evaluations):
    workdir, _ = evaluated_run
    out, results = evaluations
    result = results["final"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fid" in result.stdout and "is of real data" in result.stdout
    written = json.loads((workdir / "metrics.json").read_text())
    assert written["step"] == 4 and written["num"] == 200
    assert written["reference"]["split"] == "test" and written["reference"]["num"] == 2000
    assert {"density", "coverage"} <= set(written["metrics"])
    final = _eval_rows(workdir)[-1]
    for name in ("fid", "kid", "is", "precision", "recall"):
        assert float(final[f"eval/{name}"]) == pytest.approx(written["metrics"][name], rel=1e-5)
    best = results["best"]
    assert best.returncode == 0, best.stderr[-2000:]
    best_row = min(_eval_rows(workdir), key=lambda row: float(row["eval/fid"]))
    assert json.loads((out / "best.json").read_text())["metrics"]["fid"] == pytest.approx(
        float(best_row["eval/fid"]), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ERRORS)
def test_evaluate_cli_errors_are_one_line(evaluations, name):
    result, fragment = evaluations[1][name], ERRORS[name][1]
    assert result.returncode == 2
    assert fragment in result.stderr and result.stderr.count("\n") == 1
