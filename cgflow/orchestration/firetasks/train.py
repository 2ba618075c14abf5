"""The campaign's final Firework: train the models from the stored results.

It runs after every parameter-set branch has finished, converged or not (its spec
allows fizzled parents), and calls the training stage
(:func:`cgflow.stages.train.train_campaign_models`) on the campaign's database: the
converged sets of the campaign (its own and reused ones) are trained on and the models
stored. A campaign with too few converged sets stores a ``status`` document with a clear
message instead of a meaningless model, and the Firework completes.
"""

from __future__ import annotations

from typing import Any

from fireworks import FiretaskBase, FWAction, explicit_serialize

from cgflow.db.store import Store
from cgflow.orchestration.firetasks.context import db_file_for
from cgflow.stages.train import train_campaign_models


@explicit_serialize
class TrainModelsTask(FiretaskBase):
    """Train the campaign's models from the database (after all branches)."""

    required_params = ["campaign"]
    optional_params = ["preset", "seed"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        with Store.from_launchpad_file(db_file_for(fw_spec)) as store:
            out = train_campaign_models(store, self["campaign"], self.get("preset"),
                                        int(self.get("seed", 0)))
        return FWAction(stored_data=out)
