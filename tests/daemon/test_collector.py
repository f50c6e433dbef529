"""The daemon tunes its collector once started (gcs.daemon.collector)."""

from __future__ import annotations

import gc

from gcs.daemon.collector import GEN0_THRESHOLD, tune_after_start


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    frozen = gc.get_freeze_count()
    before = tune_after_start()
    try:
        assert gc.get_threshold() == (GEN0_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() > frozen, (
            "what survived start-up is out of the collector's way"
        )
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
