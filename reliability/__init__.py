"""The fault suite behind `make reliability`: real brokers, real `bouncewire consume`
processes, a real HTTP receiver, faults injected on purpose, figures in a table.

    reliability.model      -- Scenario (one row of figures) and the report
    reliability.harness    -- brokers, topics, acknowledged publishing, consumer processes
    reliability.scenarios  -- one module per scenario, each `run(ctx) -> Scenario`
    reliability.run        -- the runner: `python -m reliability.run [--short] [--only NAME]`
"""
