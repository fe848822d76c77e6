"""Chapter-1 models: maximum likelihood by hand, generative against discriminative, a tiny sequence model."""
