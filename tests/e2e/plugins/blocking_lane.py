"""A test-only plugin: lane ``blocking`` stops inside ``fit`` on its first run until it is killed.

On its first call (no marker file yet) it creates the marker, tells the test it is training by
writing one byte to a FIFO, and waits forever; the test then kills the process. On a later call
(the marker exists) it trains like the built-in ``linear`` lane.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from customer_model_factory.builtins.lanes import LinearTrainingLane
from customer_model_factory.plugin_api import TrainingLaneSpec, hookimpl

CMF_PLUGIN_API = "1.1"
_CONTROL = ("marker", "fifo")


class BlockingLane:
    def fit(self, examples, *, hyperparameters, seed):
        marker = Path(hyperparameters["marker"])
        if not marker.exists():
            marker.write_text("started\n")
            fd = os.open(hyperparameters["fifo"], os.O_WRONLY)
            os.write(fd, b"R")
            os.close(fd)
            threading.Event().wait()
        rest = {k: v for k, v in hyperparameters.items() if k not in _CONTROL}
        return LinearTrainingLane().fit(examples, hyperparameters=rest, seed=seed)

    def load(self, directory):
        return LinearTrainingLane().load(directory)


@hookimpl
def cmf_training_lanes():
    return [
        TrainingLaneSpec(name="blocking", requires_private_execution=False, lane=BlockingLane())
    ]
