"""The development key set is created once, even when several services start at the same moment."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from shared.auth.keys import load_or_create_jwks


def test_processes_racing_to_create_the_key_set_all_get_the_same_complete_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys" / "jwks.json"
    with concurrent.futures.ProcessPoolExecutor(4) as pool:
        sets = list(pool.map(load_or_create_jwks, [path] * 12))
    assert len({key_set["keys"][0]["kid"] for key_set in sets}) == 1
    assert all("d" in key_set["keys"][0] for key_set in sets)
    assert [p.name for p in path.parent.iterdir()] == ["jwks.json"]  # no temporary files left
    assert path.stat().st_mode & 0o777 == 0o600
