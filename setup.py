"""Package layout that pyproject.toml cannot express: map top-level folders into the package."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["edgestream", "edgestream.*"]) + ["edgestream._devices", "edgestream._pipelines"],
    package_dir={"edgestream._devices": "devices", "edgestream._pipelines": "assets/pipelines"},
)
