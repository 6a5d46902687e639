"""The training-free estimation: lighting and albedo, completion, multi-photo fusion."""
