"""Writes are whole or absent; temporaries of killed runs are cleaned (issue 14, item 12)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from xstochsr.io import atomic_path, atomic_write_bytes, remove_stale_temporaries, write_netcdf


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_of_killed_runs_removed_on_next_write(tmp_path):
    dead = tmp_path / f".out.nc.{_dead_pid()}.abc123.tmp"
    dead.write_bytes(b"half a file")
    live = tmp_path / f".out.nc.{os.getppid()}.def456.tmp"  # a live writer elsewhere
    live.write_bytes(b"in progress")
    mine = tmp_path / "notes.tmp"  # not ours: never touched
    mine.write_text("keep")
    write_netcdf(xr.Dataset({"a": ("x", np.arange(3.0))}), tmp_path / "out.nc")
    assert not dead.exists()
    assert live.exists() and mine.exists()
    assert xr.open_dataset(tmp_path / "out.nc")["a"].values.tolist() == [0.0, 1.0, 2.0]


def test_model_save_cleans_a_killed_save(tmp_path):
    from fields import tiny_model

    dead = tmp_path / f".m.safetensors.{_dead_pid()}.x1.tmp"
    dead.write_bytes(b"\0" * 10)
    tiny_model().save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError, OSError])
def test_any_exception_leaves_no_temporary_and_the_old_file(tmp_path, exc):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(exc), atomic_path(path) as tmp:
        tmp.write_bytes(b"new, half")
        raise exc("stop")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_remove_stale_temporaries_reports_what_it_removed(tmp_path):
    pid = _dead_pid()
    a = tmp_path / f".x.{pid}.q.tmp"
    a.write_text("")
    assert remove_stale_temporaries(tmp_path) == [a]
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_stale_pooch_downloads_removed(tmp_path, monkeypatch):
    from xstochsr import datasets

    old = tmp_path / "tmpa1b2c3"
    old.write_bytes(b"partial download")
    stamp = time.time() - 2 * datasets.STALE_DOWNLOAD_S
    os.utime(old, (stamp, stamp))
    fresh = tmp_path / "tmpzzz"  # a download in progress
    fresh.write_bytes(b"x")
    assert datasets.remove_stale_downloads(tmp_path) == [old]
    assert fresh.exists() and not old.exists()
