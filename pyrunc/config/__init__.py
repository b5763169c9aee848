"""config.json: loading (load.py), the validation pipeline (validate.py), the schema
compiler and checks (schema/), semantic checks by area (semantic/), runc compatibility
(compat.py), the default config (default.py).

Kept tiny on purpose: it is imported on the create hot path (no pathlib: ~4 ms).
"""

import os
import sys


def specs_dir() -> str:
    """The directory holding the project's runtime-spec JSON schemas.

    A source checkout's ``<repo>/specs`` wins; otherwise the copy that setup.cfg
    installs as data files under ``<prefix>/share/pyrunc/specs``.
    """
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.realpath(__file__)))), "specs")
    if os.path.isdir(checkout):
        return checkout
    return os.path.join(sys.prefix, "share", "pyrunc", "specs")
