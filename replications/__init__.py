"""Replication folders: each ``replications/<name>/`` is one paper (see README.md); its ``stages/`` holds the code only it uses."""
