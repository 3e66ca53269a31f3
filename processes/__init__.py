"""OGC API - Processes: persisted async jobs, the road-network engine and the accessibility analysis."""
