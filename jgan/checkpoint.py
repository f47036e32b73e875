"""A thin orbax `CheckpointManager` wrapper: the train state, the run key and the loop's metadata.

Orbax writes each step into a temporary folder and renames it when complete, so a crash during a
save never damages the checkpoints already there.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, directory, *, keep: int = 3):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                preservation_policy=ocp.checkpoint_managers.LatestN(keep), create=True),
            item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state, run_key: jax.Array, meta: dict) -> None:
        tree = {"train_state": state, "run_key": jax.random.key_data(run_key)}
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)))

    def restore(self, step: int, abstract_state):
        """Returns `(state, run_key, meta)`; `abstract_state` gives shapes, dtypes and shardings."""
        run_key_shape = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))
        target = {"train_state": abstract_state, "run_key": run_key_shape}
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
        tree = restored["state"]
        return (tree["train_state"], jax.random.wrap_key_data(tree["run_key"]), restored["meta"])

    def restore_meta(self, step: int) -> dict:
        """Only the JSON metadata of a checkpoint (config, image shape, data position)."""
        return self._manager.restore(
            step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def delete(self, step: int) -> None:
        self._manager.delete(step)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
