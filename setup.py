"""Build step that pyproject.toml cannot express: the C firmware core's host module (cffi).

Everything else lives in pyproject.toml; ``pip install -e .`` runs this and compiles
``memhw.cfirmware._core`` from ``firmware/`` with the system C compiler (gcc).
"""

from setuptools import setup

setup(cffi_modules=["memhw/cfirmware/build.py:ffibuilder"])
