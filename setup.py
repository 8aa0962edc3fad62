"""Only the optional C accelerator lives here; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and the decoder runs its
pure-Python path (same results, slower; ``scanguard replay`` reports which one it used).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "scanguard_ids.eve._fast",
            sources=["scanguard_ids/eve/_fast.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
