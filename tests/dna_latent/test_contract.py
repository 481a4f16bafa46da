"""The omigen contract kit on the dna_latent plugin: a tiny CPU run, sampling, checkpoints, metrics, baselines."""

from omigen.testing import parametrize_plugin_checks


@parametrize_plugin_checks("dna_latent")
def test_contract(check, tmp_path):
    check(tmp_path)
