"""sesn.sweep: the shared sweep runner's record state and shards."""

from __future__ import annotations

import json

import pytest

from sesn.errors import InputError
from sesn.sweep import record_state, shard


def test_record_state_skips_only_a_finished_run_with_the_same_identity(tmp_path):
    rec = tmp_path / "record.json"
    want = {"sweep": "s1", "model": "m", "seed": 0}
    assert record_state(rec, want) == "absent"
    rec.write_text(json.dumps({"status": "running", **want}))
    assert record_state(rec, want) == "absent"  # unfinished: resume it
    rec.write_text(json.dumps({"status": "done", **want}))
    assert record_state(rec, want) == "done"
    rec.write_text(json.dumps({"status": "done", **want, "sweep": "s2"}))
    assert record_state(rec, want) == "other"  # finished with other settings: reported, never overwritten


def test_shards_partition_a_plan():
    runs = list(range(10))
    assert sorted(sum((shard(runs, f"{k}/3") for k in range(3)), [])) == runs
    with pytest.raises(InputError, match="k/n"):
        shard(runs, "1")
