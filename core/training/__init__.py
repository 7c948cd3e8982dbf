"""Training-loop utilities shared by backends: seeding, resumable state, logging, replay, evaluation."""
