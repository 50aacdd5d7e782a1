"""Pictures of networks, of their neurons, of their decisions and of training (the `plot` extra).

matplotlib is imported only by these modules, and drawn with its Agg backend, so pictures are
made without a screen and `netspec run` never loads it.
"""
