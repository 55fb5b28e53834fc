"""Replication dynamic_head_pruning_kd: see README.md beside this file."""
