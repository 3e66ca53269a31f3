"""OGC API - Processes (accessibility, siting): built in later issues."""
