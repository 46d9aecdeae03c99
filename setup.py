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
            # one module, its sources by part: see the head of _fastleaf.c
            sources=[
                "src/trailkeep/model/_fastleaf.c",
                "src/trailkeep/model/_fastleaf_buffer.c",
                "src/trailkeep/model/_fastleaf_sha2x.c",
                "src/trailkeep/model/_fastleaf_leaf.c",
                "src/trailkeep/model/_fastleaf_json.c",
                "src/trailkeep/model/_fastleaf_rows.c",
                "src/trailkeep/model/_fastleaf_tally.c",
                "src/trailkeep/model/_fastleaf_sqlite.c",
                "src/trailkeep/model/_fastleaf_tree.c",
                "src/trailkeep/model/_fastleaf_bundle.c",
            ],
            depends=["src/trailkeep/model/_fastleaf.h"],
            libraries=["crypto", "sqlite3"],
            optional=True,
        )
    ]
)
