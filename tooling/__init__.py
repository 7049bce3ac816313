"""Local tooling: the CLI, bench, chaos, smoke, demo, card-number scan, batch jobs and the
local service supervisor. The runtime (streams, scoring, retraining, schemas, api) never
imports it."""
