"""gdl-ref: the reference code behind the generative deep learning cards.

Every family of generative model in one small, readable PyTorch module, trained by
one shared loop (:func:`gdl_ref.train.fit`) and measured by the same metrics
(:mod:`gdl_ref.metrics`) on the same embedded data (:mod:`gdl_ref.data`).
"""

__version__ = "0.1.0"
