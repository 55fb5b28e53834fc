"""Replication uhkd: see README.md beside this file."""
