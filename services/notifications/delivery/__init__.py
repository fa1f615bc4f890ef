"""The delivery queue both channels share: dispatcher, per-target lanes, outcomes."""
