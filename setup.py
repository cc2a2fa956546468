"""Package layout that pyproject.toml cannot express: map top-level folders into the package
(device profiles, bundled pipelines and the dependency lock ship as package data)."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["edgestream", "edgestream.*"]) + ["edgestream._devices", "edgestream._pipelines", "edgestream._lock"],
    package_dir={"edgestream._devices": "devices", "edgestream._pipelines": "assets/pipelines", "edgestream._lock": "lock"},
)
