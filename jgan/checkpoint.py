"""A thin orbax `CheckpointManager` wrapper: the train state, the run key and the loop's metadata.

Each network of the state is a named item of its own (`g/`, `d/`, and `e/` for BiGAN), beside
`state/` (step, family extras, run key) and `meta/` (JSON). So one network loads without reading
the others (`restore_networks`), which is how parts of different runs are combined.

Orbax writes each step into a temporary folder and renames it when complete, so a crash during a
save never damages the checkpoints already there.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp

# Items that are not networks; a network may not take these names.
STATE_ITEM, META_ITEM = "state", "meta"


class Checkpointer:
    def __init__(self, directory, *, keep: int = 3):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                preservation_policy=ocp.checkpoint_managers.LatestN(keep), create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state, run_key: jax.Array, meta: dict) -> None:
        rest = {"step": state.step, "extra": state.extra, "run_key": jax.random.key_data(run_key)}
        items = {name: ocp.args.StandardSave(net) for name, net in state.nets.items()}
        self._manager.save(step, args=ocp.args.Composite(
            **items, **{STATE_ITEM: ocp.args.StandardSave(rest),
                        META_ITEM: ocp.args.JsonSave({**meta, "networks": sorted(state.nets)})}))

    def restore(self, step: int, abstract_state, *, num_keys: int | None = None):
        """Returns `(state, run_key, meta)`; `abstract_state` gives shapes, dtypes and shardings.

        `num_keys`: the run key is a stack of that many keys (one per seed, `jgan.mode_collapse`).
        """
        one_key = jax.random.key(0) if num_keys is None else jax.random.split(
            jax.random.key(0), num_keys)
        run_key_shape = jax.eval_shape(lambda: jax.random.key_data(one_key))
        if not (self.directory / str(step) / next(iter(abstract_state.nets))).is_dir():
            return self._restore_single_item(step, abstract_state, run_key_shape)
        items = {name: ocp.args.StandardRestore(net) for name, net in abstract_state.nets.items()}
        rest = {"step": abstract_state.step, "extra": abstract_state.extra,
                "run_key": run_key_shape}
        restored = self._manager.restore(step, args=ocp.args.Composite(
            **items, **{STATE_ITEM: ocp.args.StandardRestore(rest),
                        META_ITEM: ocp.args.JsonRestore()}))
        state = abstract_state.replace(step=restored[STATE_ITEM]["step"],
                                       nets={name: restored[name] for name in abstract_state.nets},
                                       extra=restored[STATE_ITEM]["extra"])
        return (state, jax.random.wrap_key_data(restored[STATE_ITEM]["run_key"]),
                restored[META_ITEM])

    def _restore_single_item(self, step, abstract_state, run_key_shape):
        """Checkpoints written before networks were items of their own (jgan <= issue 4)."""
        restored = self._manager.restore(step, args=ocp.args.Composite(**{
            STATE_ITEM: ocp.args.StandardRestore({"train_state": abstract_state,
                                                  "run_key": run_key_shape}),
            META_ITEM: ocp.args.JsonRestore()}))
        tree = restored[STATE_ITEM]
        return (tree["train_state"], jax.random.wrap_key_data(tree["run_key"]),
                restored[META_ITEM])

    def restore_networks(self, step: int, abstract_nets: dict) -> dict:
        """Only the named networks' items (`{"e": abstract NetworkState}` -> `{"e": state}`)."""
        restored = self._manager.restore(step, args=ocp.args.Composite(
            **{name: ocp.args.StandardRestore(net) for name, net in abstract_nets.items()}))
        return {name: restored[name] for name in abstract_nets}

    def restore_meta(self, step: int) -> dict:
        """Only the JSON metadata of a checkpoint (config, image shape, data position)."""
        return self._manager.restore(
            step, args=ocp.args.Composite(**{META_ITEM: ocp.args.JsonRestore()}))[META_ITEM]

    def delete(self, step: int) -> None:
        self._manager.delete(step)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
