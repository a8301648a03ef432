"""alerts: arrives with its issue; kept as a package so the layout is stable."""
