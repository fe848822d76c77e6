"""The six families of generative model (Foster, *Generative Deep Learning*, 2nd ed., Part II), one module each.

Each family has an image model (digits) and a 2-D model (toys) as separate small classes on a shared base.
``registry`` maps a family name to its module and defines the config every family extends; ``unet`` holds the
denoisers that diffusion uses; ``standardize`` the fixed affine layer of the 2-D density models; ``spaces`` how
digits and points enter and leave the GAN and the EBM.
"""
