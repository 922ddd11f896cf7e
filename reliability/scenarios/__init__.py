"""One module per scenario; each exposes `NAME` and `run(ctx) -> Scenario`."""
