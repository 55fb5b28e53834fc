"""Stage code only the attention_distillation replication uses (named in its params.yaml as stages/<module>.py)."""
