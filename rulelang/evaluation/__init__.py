"""Evaluation: a checked rulebook compiled to an evaluable tree, evaluated record by record
with its explanation, and the examples written inside rulebooks run."""
