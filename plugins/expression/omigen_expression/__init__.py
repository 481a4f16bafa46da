"""omigen's expression plugin: expression readers, preprocessing, diffusion denoisers and the
``expression`` pipeline (``omigen run expression``) on bundled breast tumour/normal RNA-seq."""

__version__ = "0.1.0"
