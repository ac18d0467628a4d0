"""Running a search: the runner, the Ray it runs on, the fit and its results, the checks
before anything starts and the live progress line."""
