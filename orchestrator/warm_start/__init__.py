"""Learning from earlier searches: the MLflow record as the search's memory
(docs/how-to/warm-start.md).

`fingerprint` says which earlier trials are answers (same recipe and data) and which are only
related (same recipe, other data); `record` reads them from MLflow; `plan.WarmStart` primes the
searcher with them, answers a proposal from the record instead of training it, and hands out the
best of a related task first.
"""
