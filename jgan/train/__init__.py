"""Train states, the family protocol, the shared loop and its trainers, and data parallelism."""

from jgan.train.loop import run, train
from jgan.train.parallel import jit_data_parallel, make_mesh
from jgan.train.setup import Family, Setup, build_setup
from jgan.train.state import Network, NetworkState, TrainState, init_train_state
from jgan.train.step_parts import images_to_float
from jgan.train.trainer import Schedule, Trainer

__all__ = ["Family", "Network", "NetworkState", "Schedule", "Setup", "TrainState", "Trainer",
           "build_setup", "images_to_float", "init_train_state", "jit_data_parallel", "make_mesh",
           "run", "train"]
