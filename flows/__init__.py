"""Marketing flow logic: pure functions over data. No I/O, no clock, no database, no HTTP."""
