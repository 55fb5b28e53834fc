"""Replication attention_distillation: see README.md beside this file."""
