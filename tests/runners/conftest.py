"""Model tests run single-threaded: tiny tensors gain nothing from intra-op threads, and on a
shared, loaded machine OpenMP thread hand-offs make each small op ~50× slower."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
