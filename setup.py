"""The one compiled part: ``trailkeep.model._fastleaf`` (metadata lives in pyproject.toml).

Optional: without a C compiler and OpenSSL's headers the package installs and works the same,
and verifying a dump takes about twice as long.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "trailkeep.model._fastleaf",
            ["src/trailkeep/model/_fastleaf.c"],
            libraries=["crypto"],
            optional=True,
        )
    ]
)
