"""What a search leaves beside Ray's experiment folder so that it can be resumed: its files,
the state file, the scheduler's records, and the results a crash kept from MLflow."""
