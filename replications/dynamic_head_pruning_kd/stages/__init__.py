"""Stage code only the dynamic_head_pruning_kd replication uses (named in its params.yaml as stages/<module>.py)."""
