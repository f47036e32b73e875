"""A thin orbax `CheckpointManager` wrapper: the train state, the run key and the loop's metadata.

Each network of the state is a named item of its own (`g/`, `d/`, and `e/` for BiGAN), beside
`state/` (step, family extras, run key) and `meta/` (JSON). So one network loads without reading
the others (`restore_networks`), which is how parts of different runs are combined.

Orbax writes each step into a temporary folder and renames it when complete, so a crash during a
save never damages the checkpoints already there. Old steps go the same way in reverse: renamed
to `STEP.deleting` (a name orbax never lists) before they are removed, so a crash during a
deletion never leaves half a step where a step is expected. A step that is damaged all the same
(a truncated file, a missing item) raises `DamagedCheckpointError` naming it, never orbax's or
TensorStore's traceback.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from jgan.environment import ENVIRONMENT_KEY, environment
from jgan.errors import UserError, one_line

# Items that are not networks; a network may not take these names.
STATE_ITEM, META_ITEM = "state", "meta"
ORBAX_METADATA = "_CHECKPOINT_METADATA"  # written by orbax with every step
DELETING = ".deleting"  # a step being deleted: orbax lists only names that are numbers


class DamagedCheckpointError(UserError):
    """A listed checkpoint that cannot be read: cut short, truncated or overwritten."""

    def __init__(self, directory: Path, step: int, problem: str):
        self.step, self.problem = step, problem
        self.summary = f"checkpoint {step} in {directory} is damaged ({problem})"
        super().__init__(f"{self.summary}: move {directory / str(step)} out of {directory} to "
                         "use an older one")


class Checkpointer:
    """The checkpoints in `directory`: the newest `keep` are kept as new ones are saved.

    `read_only`: open without changing anything, for tools that inspect a run (perhaps while it
    trains) and only restore.
    """

    def __init__(self, directory, *, keep: int = 3, read_only: bool = False):
        if keep < 1:
            raise ValueError(f"keep={keep}: a Checkpointer keeps at least the newest checkpoint")
        self.directory = Path(directory).absolute()
        self.keep = keep
        self._saved = False
        if not read_only:
            _on_primary(self._finish_deletions, f"jgan-checkpoint-open-{self.directory}")
        # Not orbax's read_only, which logs a warning a command-line tool would print.
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(create=not read_only))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state, run_key: jax.Array, meta: dict) -> None:
        # Waiting finalizes the previous save, after which the steps it replaces may go.
        self.wait()
        rest = {"step": state.step, "extra": state.extra, "run_key": jax.random.key_data(run_key)}
        items = {name: ocp.args.StandardSave(net) for name, net in state.nets.items()}
        self._manager.save(step, args=ocp.args.Composite(
            **items, **{STATE_ITEM: ocp.args.StandardSave(rest),
                        META_ITEM: ocp.args.JsonSave({**meta, "networks": sorted(state.nets),
                                                    ENVIRONMENT_KEY: environment()})}))
        self._saved = True

    def restore(self, step: int, abstract_state, *, num_keys: int | None = None):
        """Returns `(state, run_key, meta)`; `abstract_state` gives shapes, dtypes and shardings.

        `num_keys`: the run key is a stack of that many keys (one per seed, `jgan.mode_collapse`).
        """
        one_key = jax.random.key(0) if num_keys is None else jax.random.split(
            jax.random.key(0), num_keys)
        # The run key lies where the state's step lies (replicated, or split by seed), whatever
        # devices wrote it: another process count restores it too.
        key_data = jax.eval_shape(lambda: jax.random.key_data(one_key))
        run_key_shape = jax.ShapeDtypeStruct(
            key_data.shape, key_data.dtype, sharding=getattr(abstract_state.step, "sharding", None))
        if not any((self.directory / str(step) / name).is_dir() for name in abstract_state.nets):
            return self._restore_single_item(step, abstract_state, run_key_shape)
        rest = {"step": abstract_state.step, "extra": abstract_state.extra,
                "run_key": run_key_shape}
        restored = self._restore_items(step, {
            META_ITEM: ocp.args.JsonRestore(), STATE_ITEM: ocp.args.StandardRestore(rest),
            **{name: ocp.args.StandardRestore(net) for name, net in abstract_state.nets.items()}})
        state = abstract_state.replace(step=restored[STATE_ITEM]["step"],
                                       nets={name: restored[name] for name in abstract_state.nets},
                                       extra=restored[STATE_ITEM]["extra"])
        return (state, jax.random.wrap_key_data(restored[STATE_ITEM]["run_key"]),
                restored[META_ITEM])

    def _restore_single_item(self, step, abstract_state, run_key_shape):
        """Checkpoints written before networks were items of their own (jgan <= issue 4)."""
        restored = self._restore_items(step, {
            META_ITEM: ocp.args.JsonRestore(),
            STATE_ITEM: ocp.args.StandardRestore({"train_state": abstract_state,
                                                  "run_key": run_key_shape})})
        tree = restored[STATE_ITEM]
        return (tree["train_state"], jax.random.wrap_key_data(tree["run_key"]),
                restored[META_ITEM])

    def restore_networks(self, step: int, abstract_nets: dict) -> dict:
        """Only the named networks' items (`{"e": abstract NetworkState}` -> `{"e": state}`)."""
        return self._restore_items(step, {name: ocp.args.StandardRestore(net)
                                          for name, net in abstract_nets.items()})

    def restore_meta(self, step: int) -> dict:
        """Only the JSON metadata of a checkpoint (config, image shape, data position)."""
        return self._restore_items(step, {META_ITEM: ocp.args.JsonRestore()})[META_ITEM]

    def _restore_items(self, step: int, args: dict) -> dict:
        """`{item: restored}`; a `DamagedCheckpointError` names the first item that fails.

        Items are read one at a time so that the error can name the damaged one.
        """
        self._check_complete(step, args)
        restored = {name: self._restore_item(step, name, arg) for name, arg in args.items()}
        # Every jgan checkpoint's meta holds its config, which resuming compares.
        meta = restored.get(META_ITEM)
        if META_ITEM in restored and not (isinstance(meta, dict)
                                          and isinstance(meta.get("config"), dict)):
            raise self.damaged(step, "its meta item holds no config")
        return restored

    def _restore_item(self, step: int, name: str, arg):
        try:
            return self._manager.restore(step, args=ocp.args.Composite(**{name: arg}))[name]
        except Exception as error:  # TensorStore's errors reach us as bare Exceptions
            problem = f"its {name} item cannot be read: {one_line(error)}"
        _collect_abandoned_reads()
        raise self.damaged(step, problem)

    def _check_complete(self, step: int, items) -> None:
        """Raise `DamagedCheckpointError` for a step that lacks orbax's metadata, `meta/`,
        `state/` or one of `items` (a crash while jgan <= issue 14 deleted it, or a hand-made
        copy). Networks not asked for may be missing: they load alone (`restore_networks`)."""
        path = self.directory / str(step)
        if not path.is_dir():
            raise FileNotFoundError(f"no checkpoint {step} in {self.directory}")
        try:
            json.loads((path / ORBAX_METADATA).read_text())
        except (OSError, ValueError):
            raise self.damaged(step, f"its {ORBAX_METADATA} is missing or unreadable") from None
        missing = [name for name in (META_ITEM, STATE_ITEM, *items) if not (path / name).is_dir()]
        if missing:
            raise self.damaged(step, f"its {missing[0]} item is missing")

    def damaged(self, step: int, problem: str) -> DamagedCheckpointError:
        return DamagedCheckpointError(self.directory, step, problem)

    def set_aside(self, step: int) -> Path:
        """Move a damaged checkpoint where orbax never looks, `damaged_<directory>/<step>`
        beside this directory, for inspection. Returns where it went."""
        target = self.directory.parent / f"damaged_{self.directory.name}" / str(step)
        copies = 0
        while target.exists():  # the same step damaged again after a resume
            copies += 1
            target = target.with_name(f"{step}.{copies}")

        def move():
            target.parent.mkdir(exist_ok=True)
            (self.directory / str(step)).rename(target)

        _on_primary(move, f"jgan-checkpoint-set-aside-{self.directory}-{step}")
        self._manager.reload()
        return target

    def delete(self, step: int) -> None:
        self._delete([step])

    def _delete(self, steps) -> None:
        # Imported here: the package `jgan.train` imports this module.
        from jgan.train.faults import fault_point

        def delete_all():
            for step in steps:
                doomed = self.directory / f"{step}{DELETING}"
                (self.directory / str(step)).rename(doomed)
                fault_point("checkpoint_prune", step)
                shutil.rmtree(doomed)

        _on_primary(delete_all, f"jgan-checkpoint-delete-{self.directory}-{steps[-1]}")
        self._manager.reload()

    def _finish_deletions(self) -> None:
        """Remove the steps a crash left renamed for deletion."""
        for leftover in self.directory.glob(f"*{DELETING}"):
            shutil.rmtree(leftover)

    def wait(self) -> None:
        """Wait for the last save, then delete the steps older than the newest `keep`."""
        self._manager.wait_until_finished()
        old = self.all_steps()[:-self.keep]
        if self._saved and old:
            self._delete(old)

    def close(self) -> None:
        self.wait()
        self._manager.close()


def _on_primary(change, barrier_name: str) -> None:
    """Make the filesystem `change` in process 0 alone, then wait for every process."""
    # Imported here: the package `jgan.train` imports this module.
    from jgan.train.distributed import barrier, is_primary

    if is_primary():
        change()
    barrier(barrier_name)


def _collect_abandoned_reads(wait_s: float = 0.2) -> None:
    """Let the reads that a failed orbax restore abandons end, and collect them, quietly.

    Orbax closes its event loop at the first error, and each read still under way then ends in
    a traceback of its own (a closed loop, a task exception never retrieved, an ignored
    GeneratorExit): pages after the one-line error, or later in the run's log.
    """
    asyncio_log = logging.getLogger("asyncio")
    saved = sys.unraisablehook, sys.excepthook, asyncio_log.disabled
    sys.unraisablehook = sys.excepthook = lambda *args: None
    asyncio_log.disabled = True
    try:
        time.sleep(wait_s)
        gc.collect()
    finally:
        sys.unraisablehook, sys.excepthook, asyncio_log.disabled = saved
