"""Learning rules: float references (faithful to the papers) and fixed-point references (the firmware spec)."""
