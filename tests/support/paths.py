"""Where things are: this checkout, and the runtime-spec text next to it."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_SPEC = REPO.parent / "shared" / "runtime-spec-v1.3.0"
SCHEMA_DIR = SHARED_SPEC / "schema"
