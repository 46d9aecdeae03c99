"""The one compiled part: ``trailkeep.model._fastleaf`` (metadata lives in pyproject.toml).

Optional: without a C compiler and the headers of OpenSSL and SQLite the package installs and
works the same, and verifying a dump takes about twice as long (``verify database`` several
times as long).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "trailkeep.model._fastleaf",
            ["src/trailkeep/model/_fastleaf.c"],
            libraries=["crypto", "sqlite3"],
            optional=True,
        )
    ]
)
