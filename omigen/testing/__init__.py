"""The contract kit: checks every omigen plugin should pass, for plugin authors to run in their own tests.

With pytest, one test case per check::

    from omigen.testing import parametrize_plugin_checks

    @parametrize_plugin_checks("copula")
    def test_contract(check, tmp_path):
        check(tmp_path)

Without pytest, ``check_plugin("copula")`` runs them all and raises one AssertionError listing
the failures. The checks: the plugin loaded and its components are well formed; configs survive
JSON; loaders reject missing, empty and garbage files with OmigenInputError; a tiny CPU run of
each pipeline leaves a complete run folder with a ``weights_only``-loadable checkpoint; samples
lie in the modality's domain, depend only on the seed and survive a checkpoint round trip; every
metric and baseline of the modality works on the pipeline's data; bad input is a clear error.
"""

from omigen.testing.run_checks import CheckSkipped
from omigen.testing.suite import Check, check_plugin, parametrize_plugin_checks, plugin_checks

__all__ = ["Check", "CheckSkipped", "check_plugin", "parametrize_plugin_checks", "plugin_checks"]
