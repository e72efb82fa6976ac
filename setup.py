"""Build script for the optional compiled opcode pre-pass (``devpersist._opscan``).

Everything else is declared in ``pyproject.toml``. The extension is optional: where no
C compiler is found, or the build fails, the install still succeeds and
``devpersist._opcodes`` runs its pure-Python walker (the reference).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "devpersist._opscan",
            sources=["devpersist/_opscan.c"],
            optional=True,
        )
    ]
)
