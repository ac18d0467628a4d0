"""nasorch's names in MLflow: the tags on its runs and the trial names, in one place.

A search is one parent run (`ROLE: SEARCH`), each trial one nested child run (`ROLE: TRIAL`)
named after its trial number (`trial_name`). `nasorch compare`, the UI tests and users' own
queries (`tags."nasorch.role" = 'search'`) rely on these strings: change them only with care.
"""

from __future__ import annotations

ROLE = "nasorch.role"
SEARCH, TRIAL = "search", "trial"  # the values of ROLE

# On the parent run
EXPERIMENT = "nasorch.experiment"
SEARCHER = "nasorch.searcher"
SCHEDULER = "nasorch.scheduler"
SEARCH_SPACE = "nasorch.search_space"
TRAINABLE = "nasorch.trainable"
RESUMED = "nasorch.resumed"
BEST_TRIAL = "nasorch.best_trial"
BEST_RUN_ID = "nasorch.best_run_id"
ENDED_BY = "nasorch.ended_by"  # num_samples, time_budget, searcher_exhausted, failures
FINGERPRINT = "nasorch.fingerprint"  # what changes a trial's result (orchestrator/warm_start)
RECIPE = "nasorch.recipe"  # the same without the data: a related task shares only this

# On a trial's run
TRIAL_ID = "nasorch.trial_id"
TRIAL_NUMBER = "nasorch.trial_number"
ARCH = "nasorch.arch"
ARCH_HASH = "nasorch.arch_hash"
# running, completed, stopped_early, errored, interrupted, superseded, reused
STATUS = "nasorch.status"
# where the trial's last checkpoint is (a folder, or a storage URI without secrets): a later
# search that reuses the trial rebuilds its model from there
CHECKPOINT = "nasorch.checkpoint"
REUSED_FROM = "nasorch.reused_from"  # a reused trial: the run whose result answered it
EPOCHS = "nasorch.epochs"
ERROR = "nasorch.error"
NODE = "nasorch.node"
NODE_IP = "nasorch.node_ip"
NODE_ID = "nasorch.node_id"
DEVICE = "nasorch.device"  # what the trial trained on: cpu, cuda:0 <GPU name>
STOP_REASON = "nasorch.stop_reason"
PBT_DONOR = "nasorch.pbt.donor"
PBT_DONOR_TRIAL_ID = "nasorch.pbt.donor_trial_id"
PBT_EXPLOITS = "nasorch.pbt.exploits"
PBT_LAST_EXPLOIT = "nasorch.pbt.last_exploit"
PBT_LINEAGE = "nasorch.pbt.lineage"

# On a registered model version: the trial it was trained in
MODEL_TRIAL = "nasorch.trial"


def trial_name(number: int) -> str:
    """`t007`: a trial's short name, in run names, tables and messages."""
    return f"t{int(number):03d}"


def trial_number(config: dict) -> int:
    return int(config.get("trial_number", 0))
