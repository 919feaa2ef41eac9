"""The packages of the wheel (the rest of the metadata is in setup.cfg).

The checkout's top-level `apps/` and `tuning/` are installed inside the
library, as `keras_deeprnn.apps` and `keras_deeprnn.tuning`, so that no
generic name lands in site-packages; they import their own modules
relatively, and `python -m apps.music` still works from a checkout. The
`deeprnn` command is the module `keras_deeprnn_cli`, beside the package
(importing `keras_deeprnn` loads TensorFlow; `deeprnn --help` must not).
"""

from setuptools import find_packages
from setuptools import setup

FOLDERS = ("apps", "tuning")  # installed as keras_deeprnn.FOLDER

packages = find_packages(include=["keras_deeprnn", "keras_deeprnn.*"])
for folder in FOLDERS:
    found = find_packages(include=[folder, f"{folder}.*"])
    packages += [f"keras_deeprnn.{name}" for name in found]

setup(
    packages=packages,
    package_dir={f"keras_deeprnn.{folder}": folder for folder in FOLDERS},
    py_modules=["keras_deeprnn_cli"],
)
