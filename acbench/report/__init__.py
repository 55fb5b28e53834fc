"""The report: published vs reproduced for every claim, the check mode and the smoke reference."""
