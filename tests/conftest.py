"""Fixtures shared by several test modules."""
import pytest

from stif_core.data.synthetic import synthetic_clip
from stif_core.paths import default_data_root
from stif_core.tracking.tracker import DEFAULT_MEMORY_POLICY, STIFTracker


@pytest.fixture
def tracked_clip():
    """``(model, seed[, policy]) -> (tracker, clip)``: a tracker that has run frames 1-4 of an 8-frame synthetic
    clip."""
    def run(model, seed: int, policy: str = DEFAULT_MEMORY_POLICY):
        clip = synthetic_clip(8, size=(120, 160), seed=seed)
        tracker = STIFTracker(model, memory_policy=policy)
        tracker.init(clip.frame(0), clip.boxes[0])
        for i in range(1, 5):
            tracker.update(clip.frame(i))
        return tracker, clip
    return run


def pytest_collection_modifyitems(config, items):
    """Tests marked ``data`` need the real sequences: skipped, with the reason, when no data root is found."""
    if default_data_root() is None:
        skip = pytest.mark.skip(reason="no real sequences: set STIF_DATA_ROOT or put shared/data/sequences beside "
                                       "the project")
        for item in items:
            if item.get_closest_marker("data") is not None:
                item.add_marker(skip)
