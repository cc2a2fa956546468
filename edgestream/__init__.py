"""edgestream: real-time streaming signal processing for the edge.

LSL in → causal DSP → stateful models → LSL/XDF out, with a Qt dashboard and ED-ViT split
inference on Ray. See README.md.
"""

__version__ = "0.1.0"
