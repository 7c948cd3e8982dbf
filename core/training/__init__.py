"""Fine-tuning for every backend: the one workflow, what it hands a backend, and the training-loop toolkit."""
