"""Shared experiments on math word problems: training the MWP solver (``mwp.teacher``)."""
