"""The `nasorch` sub-commands other than run and resume: each a module with `add_arguments` and
`execute`, above every other layer of the orchestrator (tests/test_layout.py, LAYERS)."""
