"""The pure core: the gate between a suggestion and a trial slot, Pareto math, atomic JSON.
No Ray, no MLflow, no torch at import."""
