"""The six families of generative model (Foster, *Generative Deep Learning*, 2nd ed., Part II), one module each.

``registry`` maps a family name to its module; ``unet`` holds the denoisers that diffusion shares.
"""
