"""MLflow records of a search: one parent run per search, one nested child run per trial."""
