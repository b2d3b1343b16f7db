"""`eventlens loadtest`: the Locust load (load.py, run in its own process), the SLO thresholds
it is judged against and the judge."""

# The public surface: the modules other components may import (load.py only runs as -m).
__all__ = ["judge", "thresholds"]
