"""Stage code only the uhkd replication uses (named in its params.yaml as stages/<module>.py)."""
