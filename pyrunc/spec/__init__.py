"""config.json loading and validation (see config.py, validate.py, fastschema.py).

Kept tiny on purpose: it is imported on the create hot path.
"""

import sys
from pathlib import Path


def specs_dir() -> Path:
    """The directory holding the project's runtime-spec JSON schemas.

    A source checkout's ``<repo>/specs`` wins; otherwise the copy that setup.cfg
    installs as data files under ``<prefix>/share/pyrunc/specs``.
    """
    checkout = Path(__file__).resolve().parents[2] / "specs"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "pyrunc" / "specs"
