"""`make bench`: bouncewire measured side by side with the practical limits (see README)."""
