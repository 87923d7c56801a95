"""twinrun: prove that PyTorch training configured with Hydra reproduces bit for bit.

Import-light on purpose: importing ``twinrun`` does not import torch.
"""

__version__ = "0.2.0"
