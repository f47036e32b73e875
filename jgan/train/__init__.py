"""Train states, step factories and the host loop."""

from jgan.train.gan_step import images_to_float, make_gan_train_step
from jgan.train.loop import train
from jgan.train.parallel import jit_data_parallel, make_mesh
from jgan.train.setup import GANSetup, build_gan
from jgan.train.state import Network, NetworkState, TrainState, init_train_state

__all__ = ["GANSetup", "Network", "NetworkState", "TrainState", "build_gan", "images_to_float",
           "init_train_state", "jit_data_parallel", "make_gan_train_step", "make_mesh", "train"]
