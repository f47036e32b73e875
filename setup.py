"""The package list, which pyproject.toml cannot compute: every package under jgan/, found, and
the top-level experiments/ folder of the checkout, installed as jgan.experiments, so that `jgan
train dcgan` works from any folder and no top-level `experiments` package lands in site-packages
beside a user's own. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["jgan", "jgan.*"]) + ["jgan.experiments"],
      package_dir={"jgan.experiments": "experiments"})
