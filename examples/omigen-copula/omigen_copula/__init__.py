"""omigen-copula: Gaussian-copula synthetic expression data, as an omigen plugin.

Per class, each gene keeps its empirical marginal distribution (a quantile table) and the genes'
dependence is a Gaussian copula: the correlation of their normal scores. See ``README.md``.
"""

__version__ = "0.1.0"
