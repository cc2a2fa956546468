"""Channel state information (CSI): report layout, CDL channel generation (3GPP TR 38.901 via
``sionna-no-rt``), report noise, cached datasets, and prediction metrics (NMSE, spectral efficiency).

Heavy dependencies (torch, sionna) are imported inside the functions that need them, so
importing this package stays cheap.
"""

from edgestream.csi.layout import CSILayout, deinterleave, interleave
from edgestream.csi.metrics import nmse, nmse_db, nmse_per_step, spectral_efficiency, to_db

__all__ = [
    "CSILayout", "deinterleave", "interleave", "nmse", "nmse_db", "nmse_per_step", "spectral_efficiency", "to_db",
]
