"""The omigen contract kit on the genotype plugin (its tiny run uses the simulated default data)."""

from omigen.testing import parametrize_plugin_checks


@parametrize_plugin_checks("genotype")
def test_contract(check, tmp_path):
    check(tmp_path)
