"""A run directory's checkpoints and config: open it, resume from it, record the settings.

Used by the shared loop (`jgan.train.loop.run`) for every trainer. A run resumes from its
newest intact checkpoint: damaged newer ones are moved aside (see `Checkpointer.set_aside`),
and the settings are compared with those stored in the checkpoint, so `config.json` is only a
record for people and tools.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jgan import config as config_lib
from jgan import optim
from jgan.checkpoint import Checkpointer, DamagedCheckpointError
from jgan.environment import note_environment
from jgan.errors import UserError, one_line
from jgan.train.distributed import barrier, is_primary
from jgan.train.lock import check_run_directory

CHECKPOINTS = "checkpoints"
CONFIG_FILE = "config.json"


def open_run_directory(workdir: Path, *, keep: int) -> Checkpointer:
    """Create or reopen a run directory's checkpoints, keeping the newest `keep`."""
    check_run_directory(workdir)
    if is_primary():
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot create the run directory {workdir} ({error.strerror}): "
                            "choose another --workdir") from None
    barrier("jgan-run-directory")
    return Checkpointer(workdir / CHECKPOINTS, keep=keep)


def checkpoint_config(checkpointer: Checkpointer, step: int):
    """`(meta, config)` of checkpoint `step`: its metadata and the settings that wrote it."""
    meta = checkpointer.restore_meta(step)
    try:
        return meta, config_lib.from_dict(meta["config"])
    except Exception as error:  # a JSON object that is no config: any of from_dict's errors
        raise checkpointer.damaged(step, f"its config cannot be read: {one_line(error)}") from None


def config_changes(config, saved: dict) -> list[tuple]:
    """`[(field, saved value, value now)]` of the settings, other than `RESUMABLE_FIELDS`, in
    which `config` differs from the `saved` one (a dict, as a checkpoint holds it)."""
    saved = config_lib.from_dict(saved)
    saved = dataclasses.replace(saved, optim=optim.decay_as_fraction(saved.optim, config.optim,
                                                                     saved.train.steps))
    # An image folder's run is named after its folder, as it once was after the experiment's
    # default dataset: a record for people, not a setting that changes what is trained.
    same_folder = saved.data.images is not None and saved.data.images == config.data.images
    ignored = {"data.dataset"} if same_folder else set()
    differences = config_lib.differences(config_lib.to_dict(saved), config_lib.to_dict(config))
    return [d for d in differences if d[0] not in config_lib.RESUMABLE_FIELDS | ignored]


# The first "difference" of two runs of other trainers: their fields differ wholesale, so naming
# any one of them ("adapt=None") would mislead.
TRAINER = "trainer"


def family(settings) -> str | None:
    """The GAN family of a run's settings (a `jgan.config.Config` or its dict); None for other
    trainers' (DANN's). A config.json older than plug-in families kept it in `model.family`, and
    one older still had only the gan family (as `jgan.config.from_dict` reads them)."""
    if not isinstance(settings, dict):
        return getattr(settings, "family", None)
    model = settings.get("model")
    return settings.get("family", model.get("family", "gan") if isinstance(model, dict) else None)


def trainer(settings) -> str:
    """What wrote a run's settings: its name, and its GAN family where it has one."""
    name = settings.get("name") if isinstance(settings, dict) else settings.name
    return f"{name!r} of the {family(settings)} family" if family(settings) else repr(name)


def changed_settings_error(workdir: Path, changed: list[tuple]) -> UserError:
    field, was, now = changed[0]
    if field == TRAINER:
        return UserError(f"{workdir} holds a run of another experiment, {was}, not {now}: use a "
                         "new --workdir, or the experiment that wrote it to resume it")
    return UserError(f"{workdir} holds a run with {field}={was!r}, not {now!r} (and "
                     f"{len(changed) - 1} more differences): use a new --workdir, or the run's "
                     "own settings to resume it")


def restore_latest(checkpointer: Checkpointer, workdir: Path, config, abstract_state, *,
                   num_keys: int | None = None, meta_keys=(), changes=config_changes,
                   read_config=config_lib.load, log=print):
    """`(state, run_key, meta)` of the run's newest intact checkpoint, or None for a new run.

    The checkpoint must have been written with `config`: `changes(config, saved config dict)`
    lists the settings that differ (default: a `jgan.config.Config`'s, up to
    `RESUMABLE_FIELDS`), and its metadata must hold `meta_keys`. A newer checkpoint that is
    damaged, lacks a key, or holds other settings than an older one that matches `config` (not
    this run's) is moved aside with a warning. If none is intact, a `UserError`; if every one
    holds other settings, the `UserError` of a changed setting, and nothing is moved.
    `read_config(path)` reads `config.json`, to say when it is missing or unreadable.
    """
    damaged, foreign = [], []
    for step in reversed(checkpointer.all_steps()):
        try:
            changed = _changes(checkpointer, step, config, changes, meta_keys)
            if changed:
                foreign.append((step, changed))
                continue
            restored = checkpointer.restore(step, abstract_state, num_keys=num_keys)
        except DamagedCheckpointError as error:
            damaged.append(error)
            continue
        # The run's own settings are in this checkpoint, so a newer one with others is damage.
        damaged += [checkpointer.damaged(newer, "it holds another run's settings "
                                                f"({field}={was!r}, not {now!r})")
                    for newer, ((field, was, now), *_) in foreign]
        for error in sorted(damaged, key=lambda error: error.step, reverse=True):
            log(f"warning: checkpoint {error.step} in {checkpointer.directory} is damaged "
                f"({error.problem}); moved it to {checkpointer.set_aside(error.step)}")
        note_config_file(workdir, log, read_config)
        note_environment(restored[2], step, log)
        log(f"resuming {workdir} from step {step}")
        return restored
    if foreign:
        raise changed_settings_error(workdir, foreign[0][1])
    if damaged:
        steps = sorted(error.step for error in damaged)
        raise UserError(f"every checkpoint in {checkpointer.directory} is damaged (steps "
                        f"{steps}; {damaged[0].step}: {damaged[0].problem}): move "
                        f"{checkpointer.directory} away to train from step 0, or use a new "
                        "--workdir")
    return None


def _changes(checkpointer: Checkpointer, step: int, config, changes, meta_keys) -> list[tuple]:
    """The settings in which checkpoint `step` differs from `config`, read before its arrays;
    a `DamagedCheckpointError` when its metadata lacks one of `meta_keys` or its config cannot
    be read."""
    meta = checkpointer.restore_meta(step)
    missing = [key for key in meta_keys if key not in meta]
    if missing:
        raise checkpointer.damaged(step, f"its meta item lacks {missing[0]!r}")
    saved = meta["config"]
    if isinstance(saved, dict) and family(saved) != family(config):
        return [(TRAINER, trainer(saved), trainer(config))]
    try:
        return changes(config, saved)
    except Exception as error:  # a JSON object that is no config: any of from_dict's errors
        raise checkpointer.damaged(step, f"its config cannot be read: {one_line(error)}") from None


def note_config_file(workdir: Path, log, read_config=config_lib.load) -> None:
    """Say when a resumed run's `config.json` is missing or unreadable (`write_config` rewrites
    it from the settings, which the checkpoint has just vouched for)."""
    path = workdir / CONFIG_FILE
    try:
        read_config(path)
    except FileNotFoundError:
        log(f"note: {path} was missing; writing it again")
    except Exception as error:  # JSON or config errors: the checkpoint's config decides
        log(f"note: {path} is unreadable ({type(error).__name__}); rewriting it")


def write_config(config, workdir: Path, *, save=config_lib.save) -> None:
    """`config.json`: the settings of the run in `workdir`, for people and for `jgan.tools`.

    `save(config, path)` writes a temporary file renamed over the old one (`jgan.config.save`),
    so a crash leaves one or the other.
    """
    if is_primary():
        save(config, workdir / CONFIG_FILE)
    barrier("jgan-config-json")
