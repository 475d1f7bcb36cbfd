"""What several test modules share: where the real data lives, and a wide CLI terminal."""

from pathlib import Path

import pytest

# ../shared/ beside the project root (see the developers' guide); CI has it too.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = SHARED / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data folder {REAL} is absent")
WIDE = {"COLUMNS": "200"}  # rich tables wrap long column names at the default 80 columns
