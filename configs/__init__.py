"""YAML presets per backend, shipped as package data."""
